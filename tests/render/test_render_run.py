"""Run rendered scripts against fake programs: values arrive literally, nothing is executed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ascend_pd.launch.api import plan_units
from ascend_pd.render import build_plan, render_deploy
from ascend_pd.spec import ClusterSpec, parse_spec

from .conftest import edited, spec_text

# Prints its argv and a few env vars as JSON: stands in for `vllm`, `docker` and python.
FAKE = """#!{python}
import json, os, sys
print(json.dumps({{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in {keys!r}}}}}))
"""
KEYS = ["NOTE", "DISAGGREGATED_PREFILL_RANK_TABLE_PATH", "ASCEND_RT_VISIBLE_DEVICES",
        "VLLM_HOST_IP", "VLLM_ASCEND_LLMDD_RPC_PORT", "HCCL_INTRA_ROCE_ENABLE"]


def _fake(bin_dir: Path, name: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(FAKE.format(python=sys.executable, keys=KEYS))
    path.chmod(0o755)
    return path


def _run(script: Path, bin_dir: Path, **env: str) -> dict[str, object]:
    full_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=20,
                          env=full_env, cwd=script.parent, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_hostile_values_stay_literal(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = spec_text("hostile").replace("PWNED_MARKER", str(marker))
    spec = parse_spec(text, "hostile.yaml")
    out = tmp_path / "deploy"
    render_deploy(spec, out, "hostile.yaml")
    bin_dir = tmp_path / "bin"
    _fake(bin_dir, "vllm")
    seen = _run(out / "prefill-0@node0.sh", bin_dir)
    expected = build_plan(spec).processes[0].argv
    assert seen["argv"] == expected[1:]
    assert seen["argv"][1] == f"/models/My Model's \"v2\" $(touch {marker})"
    assert seen["argv"][3] == "it's `id` $HOME"
    assert seen["argv"][-1] == f"/t/$(touch {marker}) x.jinja"
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["NOTE"] == f"a;b && $(touch {marker}) 'q' \"dq\" \\ end"
    assert env["DISAGGREGATED_PREFILL_RANK_TABLE_PATH"] == f"/etc/rank table $(touch {marker}).json"
    assert env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1,2,3"
    assert env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["HCCL_INTRA_ROCE_ENABLE"] == "1"
    assert not marker.exists(), "a value was executed by the shell"


def test_sim_script_execs_the_simulated_server(tmp_path: Path) -> None:
    spec = parse_spec(spec_text("a2-sim"), "a2-sim.yaml")
    out = tmp_path / "deploy"
    bin_dir = tmp_path / "bin"
    python = _fake(bin_dir, "python-fake")
    render_deploy(spec, out, "a2-sim.yaml", python=str(python))
    seen = _run(out / "decode-0@sim0.sh", bin_dir)
    assert seen["argv"] == ["-m", "ascend_pd.simserver", "--role", "decode", "--host",
                            "127.0.0.1", "--port", "8200", "--model", "qwen3", "--engine-id",
                            "decode-0", "--prefill-ms-per-1k", "5", "--decode-ms-per-token",
                            "0.5"]
    # ASCEND_PD_PYTHON at launch time overrides the rendered interpreter.
    other = _fake(bin_dir, "other-python")
    seen = _run(out / "proxy@sim0.sh", bin_dir, ASCEND_PD_PYTHON=str(other))
    assert seen["argv"][:4] == ["-m", "ascend_pd", "proxy", "--host"]
    assert "--prefill" in seen["argv"]
    assert "127.0.0.1:8100" in seen["argv"]
    # Only the decode DP head is a proxy target; its headless host runs a placeholder.
    assert "127.0.0.2:8200" not in seen["argv"]
    manifest = json.loads((out / "manifest.json").read_text())
    headless = [p for p in manifest["processes"] if p["serving"] == "headless"]
    assert [p["name"] for p in headless] == ["decode-0@sim1"]
    assert headless[0]["simulated_placeholder"] is True
    assert "exec sleep infinity" in (out / "decode-0@sim1.sh").read_text()


def _docker_spec() -> ClusterSpec:
    def edit(data: dict[str, object]) -> None:
        hosts = data["hosts"]
        assert isinstance(hosts, list)
        hosts[0]["runtime"] = "docker"
        hosts[0]["docker"] = {"image": "quay.io/ascend/vllm-ascend:v0.11.0", "shm_size": "64g"}
    return edited("a2-1p1d-single", edit)


def test_docker_runtime_mounts_what_the_npu_needs(tmp_path: Path) -> None:
    spec = _docker_spec()
    plan = build_plan(spec)
    docker = plan.processes[0].docker_argv
    assert docker is not None
    joined = " ".join(docker)
    for needed in ("--net=host", "--shm-size=64g", "--device=/dev/davinci0",
                   "--device=/dev/davinci7", "--device=/dev/davinci_manager",
                   "--device=/dev/devmm_svm", "--device=/dev/hisi_hdc",
                   "/etc/hccn.conf:/etc/hccn.conf:ro",
                   "/usr/local/Ascend/driver/tools/hccn_tool:", "/usr/local/dcmi:",
                   "/usr/local/bin/npu-smi:", "/models/Qwen3-8B:/models/Qwen3-8B:ro",
                   "/etc/ascend-pd/ranktable.json:", "-e VLLM_HOST_IP"):
        assert needed in joined, needed
    assert docker[-1] == "quay.io/ascend/vllm-ascend:v0.11.0"


@pytest.mark.skipif(Path("/etc/hccn.conf").exists(),
                    reason="this machine has /etc/hccn.conf, so the missing-file guard passes")
def test_docker_script_refuses_without_hccn_conf(tmp_path: Path) -> None:
    render_deploy(_docker_spec(), tmp_path, "d.yaml")
    bin_dir = tmp_path / "bin"
    marker = _fake(bin_dir, "docker")
    done = subprocess.run(["bash", str(tmp_path / "prefill-0@node0.sh")], capture_output=True,
                          text=True, timeout=20, check=False,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert done.returncode == 1
    assert "/etc/hccn.conf is missing" in done.stderr
    assert done.stdout == ""
    assert marker.exists()


def test_docker_units_carry_their_container_name_for_stop() -> None:
    units, _manifest = plan_units(_docker_spec())
    servers = [u for u in units if u.role != "proxy"]
    assert servers and all(u.container for u in servers)
    assert {u.container for u in servers} == {
        f"ascend-pd-{u.instance}-{u.host}" for u in servers}
