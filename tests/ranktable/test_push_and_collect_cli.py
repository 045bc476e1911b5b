"""gen-ranktable --push (parallel, per-host results, exit 3) and --collect-only typos."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.examples import example_spec
from ascend_pd.ranktable.push import push_ranktable
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.local import LocalRunner
from ascend_pd.runners.ssh import SSHRunner
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.spec import load_spec


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def sim_spec(tmp_path: Path) -> Path:
    save_cluster(generate_cluster([("node-p", "192.0.2.11"), ("node-d", "192.0.2.12")]),
                 tmp_path / "sim.yaml")
    data = yaml.safe_load(example_spec("a2-1p1d"))
    data.update(sim={"cluster": "sim.yaml"}, backend="sim")
    data["connector"]["ranktable_path"] = str(tmp_path / "hosts" / "ranktable.json")
    spec = tmp_path / "pd.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_push_continues_past_a_failing_host(sim_spec: Path, tmp_path: Path) -> None:
    spec = load_spec(sim_spec)
    port = _closed_port()

    def runner_for(name: str) -> CommandRunner:
        if name == "node-p":  # unreachable: SSH to a closed port
            return SSHRunner(name, address="127.0.0.1", port=port, connect_timeout=5,
                             known_hosts=str(tmp_path / "kh"), host_key_policy="accept-new")
        return LocalRunner(name)

    results = push_ranktable(spec, '{"version": "1.2"}\n', runner_for)
    assert [(r.host, r.ok) for r in results] == [("node-p", False), ("node-d", True)]
    assert results[0].error
    assert (tmp_path / "hosts" / "ranktable.json").read_text() == '{"version": "1.2"}\n'


def test_push_failures_are_per_host_results_with_exit_3(sim_spec: Path, tmp_path: Path) -> None:
    # The in-process sim backend runs no shell: every copy fails, the table is still written.
    out = tmp_path / "rt.json"
    result = run("gen-ranktable", "-c", str(sim_spec), "-o", str(out), "--push", "--json")
    assert result.exit_code == 3, result.output
    doc = json.loads(result.output)
    assert [(p["host"], p["ok"]) for p in doc["data"]["pushed"]] == [
        ("node-p", False), ("node-d", False)]
    assert json.loads(out.read_text())["server_count"] == "2"
    human = run("gen-ranktable", "-c", str(sim_spec), "-o", str(out), "--push")
    assert "NOT copied to node-p:" in human.output
    assert "2 of 2 host(s) did not get the table" in human.output


def test_collect_only_with_a_mistyped_host_is_a_clean_usage_error(sim_spec: Path) -> None:
    result = run("gen-ranktable", "-c", str(sim_spec), "--collect-only", "--host", "node-q")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--host 'node-q' is not a host of the spec" in result.output
    assert "did you mean 'node-p'?" in result.output
