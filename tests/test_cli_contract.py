"""The JSON envelope is a contract for runbooks: pin its keys for success and error."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ascend_pd.cli import cli

ENVELOPE_KEYS = {"ascend_pd_result_version", "command", "status", "exit_code", "data", "errors"}


def test_error_envelope(tmp_path: Path) -> None:
    spec = tmp_path / "pd.yaml"
    spec.write_text("hosts: 3\n")
    result = CliRunner().invoke(cli, ["validate", "-c", str(spec), "--json"])
    assert result.exit_code == 2
    doc = json.loads(result.output)
    assert set(doc) == ENVELOPE_KEYS
    assert doc["status"] == "error"
    assert doc["errors"][0]["type"] == "SpecError"
    assert doc["errors"][0]["hint"]


def test_every_command_has_json_flag() -> None:
    def walk(group: object, prefix: str = "") -> list[tuple[str, object]]:
        out = []
        for name, cmd in getattr(group, "commands", {}).items():
            if hasattr(cmd, "commands"):
                out += walk(cmd, f"{prefix}{name} ")
            else:
                out.append((prefix + name, cmd))
        return out

    for name, cmd in walk(cli):
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}  # type: ignore[attr-defined]
        assert "--json" in opts, f"`ascend-pd {name}` has no --json"
