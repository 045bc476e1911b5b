"""The README's main job: `ascend-pd demo` runs the whole flow and cleans up after itself."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.releases import newest_stable
from tests.launch.procs import pid_alive, processes_matching


def test_demo_runs_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(workdir), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    steps = [s["step"] for s in doc["data"]["steps"]]
    # What init writes today: Mooncake on the newest stable release, so no rank table.
    assert steps[:3] == ["validate", "check-links", "render"]
    spec = yaml.safe_load((workdir / "pd.yaml").read_text())
    assert spec["connector"]["type"] == "mooncake"
    assert spec["connector"]["vllm_ascend_version"] == newest_stable()
    assert not (workdir / "ranktable.json").exists()
    check = doc["data"]["steps"][1]
    assert [(f["where"]["host"], f["where"]["device"], f["check"])
            for f in check["faults_before"]] == [
        ("node-d", 3, "tls")]
    assert check["faults_after"] == 0
    assert "launch" in steps
    assert steps[-1] == "stop"
    load = doc["data"]["load"]
    assert load["errors"] == 0
    assert load["tokens"] == 64 * 32
    assert (workdir / "deploy" / "manifest.json").is_file()
    pids = next(s for s in doc["data"]["steps"] if s["step"] == "launch")["units"]
    assert len(pids) == 3
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert doc["data"]["total_s"] >= sum(s["seconds"] for s in doc["data"]["steps"]) - 0.1


def test_demo_prints_its_step_timings_at_the_end(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    table = result.output[result.output.rindex("step timings:"):].splitlines()
    names = [line.split()[0] for line in table[1:] if line.startswith("  ")]
    assert names == ["validate", "check-links", "render", "launch", "requests", "load", "stop",
                     "total"]
    assert all(line.rstrip().endswith(" s") for line in table[1:9])
    assert "no gen-ranktable step: connector MooncakeConnectorV1 (mooncake) reads no rank " \
        "table" in result.output


def test_demo_keep_leaves_it_running_until_stop(tmp_path: Path) -> None:
    workdir = tmp_path / "kept"
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--workdir", str(workdir), "--keep"])
    try:
        assert result.exit_code == 0, result.output
        assert "Everything is still running" in result.output
        assert f"ascend-pd stop -c {workdir / 'pd.yaml'}" in result.output
        status = runner.invoke(cli, ["status", "-c", str(workdir / "pd.yaml"), "--json"])
        assert status.exit_code == 0, status.output
        units = json.loads(status.output)["data"]["units"]
        assert {u["name"] for u in units} == {"prefill-0@node-p", "decode-0@node-d",
                                              "proxy@node-p"}
        assert all(u["alive"] and u["ready"] for u in units)
        assert processes_matching("ascend_pd.simserver") != []
    finally:
        stop = runner.invoke(cli, ["stop", "-c", str(workdir / "pd.yaml")])
    assert stop.exit_code == 0, stop.output
    assert [u["name"] for u in units if pid_alive(u["pid"])] == []


def test_demo_real_without_its_environment_says_how_to_build_it(tmp_path: Path) -> None:
    # tests/realvllm deploys the same spec for real; here only the missing-environment path.
    result = CliRunner().invoke(cli, ["demo", "--real", "--real-env", str(tmp_path / "none"),
                                      "--workdir", str(tmp_path / "demo"), "--json"])
    assert result.exit_code == 2, result.output
    doc = json.loads(result.output)
    assert "real-vLLM environment is not built" in doc["errors"][0]["message"]
    assert "scripts/real-vllm-env" in doc["errors"][0]["hint"]
    assert not (tmp_path / "demo").exists()  # nothing written before the check
