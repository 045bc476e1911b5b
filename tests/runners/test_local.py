"""LocalRunner: real child processes, argv lists (no shell), process-group kill on timeout."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from ascend_pd.errors import CommandTimeoutError, RunnerError
from ascend_pd.runners import LocalRunner


def test_exit_code_and_both_streams_are_reported() -> None:
    result = LocalRunner("node-a").run(
        ["sh", "-c", "echo out; echo err >&2; exit 5"])
    assert (result.host, result.exit_code, result.stdout, result.stderr) == (
        "node-a", 5, "out\n", "err\n")
    assert result.failed
    assert result.command == "sh -c 'echo out; echo err >&2; exit 5'"


def test_arguments_are_not_interpreted_by_a_shell(tmp_path: Path) -> None:
    sentinel = tmp_path / "created"
    result = LocalRunner().run(["echo", f"$(touch {sentinel})", "a b"])
    assert result.stdout == f"$(touch {sentinel}) a b\n"
    assert not sentinel.exists()


def test_env_layers_process_runner_and_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APD_FROM_PROCESS", "proc")
    runner = LocalRunner(env={"APD_A": "runner", "APD_B": "runner"})
    result = runner.run(["printenv", "APD_FROM_PROCESS", "APD_A", "APD_B"], env={"APD_B": "call"})
    assert result.stdout.splitlines() == ["proc", "runner", "call"]


def test_missing_program_is_a_runner_error_with_a_hint() -> None:
    with pytest.raises(RunnerError, match="command not found: no-such-tool-xyz") as info:
        LocalRunner("node-a").run(["no-such-tool-xyz"])
    assert info.value.host == "node-a"
    assert "full path" in (info.value.hint or "")


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = f"sleep 30 & echo $! > {pid_file}; wait"
    start = time.monotonic()
    with pytest.raises(CommandTimeoutError, match=r"did not finish within 0\.5 s"):
        LocalRunner().run(["sh", "-c", script], timeout=0.5)
    assert time.monotonic() - start < 3.0
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 2.0
    while _running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL delivery is asynchronous
    assert not _running(grandchild), "the background sleep survived the timeout"


def test_runs_the_current_interpreter() -> None:
    result = LocalRunner().run([sys.executable, "-c", "import os; print(os.getpid())"])
    assert result.ok
    assert int(result.stdout) != os.getpid()
