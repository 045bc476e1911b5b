"""The JSON envelope is a contract for runbooks: pin its keys for success and error."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.examples import example_spec

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
    def walk(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
        out: list[tuple[str, click.Command]] = []
        ctx = click.Context(group)
        # list_commands/get_command: the root group imports its commands on demand
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert cmd is not None, name
            if isinstance(cmd, click.Group):
                out += walk(cmd, f"{prefix}{name} ")
            else:
                out.append((prefix + name, cmd))
        return out

    commands = walk(cli)
    assert len(commands) > 14  # every command module, the sim subcommands too
    for name, cmd in commands:
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}  # type: ignore[attr-defined]
        assert "--json" in opts, f"`ascend-pd {name}` has no --json"


def _envelope_of(args: list[str]) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, args)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.output)


@pytest.mark.parametrize("args", [
    ["validate", "--json", "--bogus"],
    ["validate", "--bogus", "--json"],
    ["status", "--json", "--role", "nobody"],
    ["no-such-command", "--json"],
])
def test_click_usage_errors_print_the_envelope(args: list[str]) -> None:
    code, doc = _envelope_of(args)
    assert code == 2
    assert set(doc) == ENVELOPE_KEYS and doc["status"] == "error"
    assert doc["errors"][0]["type"] == "UsageError"  # type: ignore[index]


def test_usage_errors_without_json_keep_clicks_usage_text() -> None:
    result = CliRunner().invoke(cli, ["validate", "--bogus"])
    assert result.exit_code == 2
    assert "Usage: " in result.output and "No such option" in result.output


@contextlib.contextmanager
def _mounted(target: Path, *mount_args: str) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *mount_args, str(target)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@NEEDS_ROOT
def test_a_full_output_filesystem_is_an_error_envelope(tmp_path: Path) -> None:
    spec = tmp_path / "pd.yaml"
    spec.write_text(example_spec("a2-1p1d"))
    with _mounted(tmp_path / "tiny", "-t", "tmpfs", "-o", "size=8k", "tmpfs") as tiny:
        code, doc = _envelope_of(["render", "-c", str(spec), "-o", str(tiny / "deploy"),
                                  "--json"])
        assert code == 2
        error = doc["errors"][0]  # type: ignore[index]
        assert error["type"] == "FileAccessError"
        assert "No space left on device" in error["message"] and str(tiny) in error["message"]
        assert not list(tiny.rglob("*.tmp"))  # no half-written temp files left behind


@NEEDS_ROOT
def test_a_read_only_output_filesystem_is_an_error_envelope(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    spec = tmp_path / "pd.yaml"
    spec.write_text(example_spec("a2-1p1d"))
    with _mounted(tmp_path / "ro", "--bind", "-o", "ro", str(tmp_path / "ro")) as ro:
        code, doc = _envelope_of(["init", "-o", str(ro / "pd.yaml"), "--json"])
        assert code == 2
        assert "Read-only file system" in doc["errors"][0]["message"]  # type: ignore[index]


def test_a_legacy_ips_typo_is_a_usage_error_not_a_traceback() -> None:
    code, doc = _envelope_of(["gen-ranktable", "--ips", "999.1.1.1", "192.0.2.1",
                              "--prefill-device-cnt", "8", "--decode-device-cnt", "8", "--json"])
    assert code == 2
    assert "--ips 999.1.1.1: not an IPv4 or IPv6 address" in doc["errors"][0]["message"]  # type: ignore[index]
