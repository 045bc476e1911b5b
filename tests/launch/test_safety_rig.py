"""The same launch/stop safety over SSH on a rig host, and secrets kept off the remote
command line (the rig's namespaces share this machine's /proc, so `ps` there is `ps` here)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ascend_pd.launch.units import StateLayout
from ascend_pd.runners.base import CommandResult
from tests.launch import safety
from tests.runners.test_ssh import ssh_runner

pytestmark = pytest.mark.rig


@pytest.fixture
def layout(tmp_path: Path) -> StateLayout:
    return StateLayout(str(tmp_path / "state"))


def test_an_env_secret_is_not_on_any_command_line_while_it_runs(rig: Any) -> None:
    secret = "apd-secret-6f1c2b"
    results: list[CommandResult] = []
    with ssh_runner(rig, "h1") as runner:
        worker = threading.Thread(target=lambda: results.append(runner.run(
            ["sh", "-c", 'sleep 3; printf %s "$APD_SECRET"'], env={"APD_SECRET": secret},
            timeout=20)))
        worker.start()
        seen: list[str] = []
        while worker.is_alive():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    if secret.encode() in cmdline.read_bytes():
                        seen.append(cmdline.read_bytes().replace(b"\0", b" ").decode())
                except OSError:
                    pass
            time.sleep(0.05)
        worker.join()
    assert results and results[0].stdout == secret  # the command did get it
    assert seen == []


def test_stop_over_ssh_refuses_a_foreign_pid_file(rig: Any, layout: StateLayout) -> None:
    with ssh_runner(rig, "h1") as runner:
        safety.assert_foreign_pid_file_is_refused(lambda _h: runner, layout, "h1")
        safety.assert_pid_one_and_minus_one_are_never_signalled(lambda _h: runner, layout, "h1")


def test_launch_over_ssh_refuses_unsafe_state_and_log_symlinks(
        rig: Any, layout: StateLayout, tmp_path: Path) -> None:
    with ssh_runner(rig, "h1") as runner:
        safety.assert_launch_refuses_an_unsafe_state_dir(lambda _h: runner, layout, "h1")
        safety.assert_a_planted_log_symlink_is_not_followed(lambda _h: runner, layout, "h1",
                                                            tmp_path)


def test_launch_and_stop_over_ssh_with_a_private_env_file(rig: Any, layout: StateLayout) -> None:
    with ssh_runner(rig, "h1") as runner:
        safety.assert_unit_runs_and_env_file_is_private(lambda _h: runner, layout, "h1")
