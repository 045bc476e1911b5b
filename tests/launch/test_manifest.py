"""One plan per command, and the launched manifest: status / stop / logs act on what launch
started (its manifest in the state dir), even after the spec was edited into a P/D error.

Runs the real CLI against the demo's simulated 2-host world (local runner, real processes)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from ascend_pd.cli import cli
from ascend_pd.demo.setup import build_world

PLAN_LOG = "building the deployment plan of"
PORTS_LOG = "planning the ports of"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def data(result: Result) -> Any:
    return json.loads(result.output)["data"]


@pytest.fixture
def world_spec(tmp_path: Path) -> Path:
    return build_world(tmp_path / "world").spec_path


def test_each_command_builds_the_plan_and_port_plan_once(
    world_spec: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = str(world_spec)
    commands = [
        ("validate", "-c", spec, "--json"),
        ("render", "-c", spec, "-o", str(tmp_path / "deploy"), "--json"),
        ("render", "-c", spec, "-o", str(tmp_path / "deploy"), "--check", "--json"),
        ("launch", "-c", spec, "--dry-run", "--json"),
        ("status", "-c", spec, "--json"),
    ]
    for argv in commands:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="ascend_pd.render"):
            result = run(*argv)
        assert result.exit_code in (0, 1), result.output
        messages = [r.getMessage() for r in caplog.records]
        assert sum(PLAN_LOG in m for m in messages) == 1, (argv, messages)
        assert sum(PORTS_LOG in m for m in messages) == 1, (argv, messages)


def test_status_stop_logs_read_the_launched_manifest_after_a_bad_edit(world_spec: Path) -> None:
    spec = str(world_spec)
    launched = run("launch", "-c", spec, "--timeout", "60", "--json")
    try:
        assert launched.exit_code == 0, launched.output
        state_dir = Path(yaml.safe_load(world_spec.read_text())["state_dir"])
        manifest = json.loads((state_dir / "manifest.json").read_text())
        assert [p["name"] for p in manifest["processes"]] == ["prefill-0@node-p",
                                                             "decode-0@node-d"]

        # The operator starts editing: a plan-owned flag in extra_args is a P/D error, and
        # an instance renamed in the spec no longer matches what runs.
        data_ = yaml.safe_load(world_spec.read_text())
        data_["decode"][0]["name"] = "decode-new"
        data_["prefill"][0]["extra_args"] = ["--port", "9"]
        world_spec.write_text(yaml.safe_dump(data_, sort_keys=False))
        assert run("validate", "-c", spec).exit_code == 1
        refused = run("launch", "-c", spec, "--json")
        assert refused.exit_code == 2
        assert "nothing launched" in json.loads(refused.output)["errors"][0]["message"]
        assert json.loads((state_dir / "manifest.json").read_text()) == manifest

        status = run("status", "-c", spec, "--json")
        assert status.exit_code == 0, status.output
        assert {u["name"]: u["ready"] for u in data(status)["units"]} == {
            "prefill-0@node-p": True, "decode-0@node-d": True, "proxy@node-p": True}
        logs = run("logs", "-c", spec, "decode-0", "--json")
        assert logs.exit_code == 0, logs.output
        assert "Application startup complete." in data(logs)["text"]
    finally:
        stopped = run("stop", "-c", spec, "--grace", "5", "--json")
    assert stopped.exit_code == 0, stopped.output
    assert {u["name"]: u["action"] for u in data(stopped)["units"]} == {
        "proxy@node-p": "stopped", "prefill-0@node-p": "stopped",
        "decode-0@node-d": "stopped"}
