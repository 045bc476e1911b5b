"""Shared checks of launch/stop safety, run through any runner (local, or SSH on the rig):
the same assertions hold wherever the unit's host is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ascend_pd.launch.launcher import launch_units, stop_units
from ascend_pd.launch.units import StateLayout, Unit
from ascend_pd.runners.base import CommandRunner
from tests.launch.procs import pid_alive

RunnerFor = Callable[[str], CommandRunner]

SLEEPER = "#!/usr/bin/env bash\necho 'INFO:     Application startup complete.'\nexec sleep 60\n"


def sleeper_unit(name: str = "u0", host: str = "local") -> Unit:
    return Unit(name=f"{name}@{host}", host=host, address="127.0.0.1", role="decode",
                instance=name, port=None,
                files={f"{name}.sh": (SLEEPER, 0o755),
                       f"{name}.env": ("export APD_TOKEN='s3cret-token'\n", 0o600)},
                script=f"{name}.sh")


def bystander() -> subprocess.Popen[bytes]:
    """A process that is not a unit (in its own session, like a unit would be)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)


def start_ticks(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def assert_foreign_pid_file_is_refused(runner_for: RunnerFor, layout: StateLayout,
                                       host: str) -> None:
    """A pid file naming another process — even with that process's start time — makes stop
    refuse and say why; the process survives."""
    unit = sleeper_unit(host=host)
    other = bystander()
    try:
        pid_file = Path(layout.pid_file(unit))
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        for content, why in [(f"{other.pid} {int(time.time())}\n", "is another process"),
                             (f"{other.pid} {int(time.time())} {start_ticks(other.pid)}\n",
                              f"is not unit {unit.name}")]:
            pid_file.write_text(content)
            [state] = stop_units([unit], runner_for, layout, grace_s=1)
            assert state.action == "refused", state
            assert why in (state.error or ""), state.error
            assert pid_alive(other.pid)
    finally:
        other.kill()
        other.wait()


def assert_pid_one_and_minus_one_are_never_signalled(runner_for: RunnerFor,
                                                     layout: StateLayout, host: str) -> None:
    unit = sleeper_unit(host=host)
    pid_file = Path(layout.pid_file(unit))
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    for pid, why in [("1", "pid 0 and 1 are never signalled"), ("-1", "not a process id"),
                     ("0", "pid 0 and 1 are never signalled")]:
        pid_file.write_text(f"{pid} 0 0\n")
        [state] = stop_units([unit], runner_for, layout, grace_s=1)
        assert state.action == "refused" and why in (state.error or ""), state


def assert_launch_refuses_an_unsafe_state_dir(runner_for: RunnerFor, layout: StateLayout,
                                              host: str) -> None:
    root = Path(layout.root)
    root.mkdir(parents=True, exist_ok=True)
    unit = sleeper_unit(host=host)
    for mode, fix in [(0o777, "chmod go-w"), (0o775, "chmod go-w")]:
        root.chmod(mode)
        [state] = launch_units([unit], runner_for, layout, ready_timeout_s=10)
        assert state.error and "writable by group or others" in state.error, state
        assert fix in state.error
        assert not Path(layout.pid_file(unit)).exists()
    root.chmod(0o755)
    os.chown(root, 65534, 65534)  # nobody: we are root (the caller checks)
    try:
        [state] = launch_units([unit], runner_for, layout, ready_timeout_s=10)
        assert state.error and "is owned by uid 65534" in state.error, state
    finally:
        os.chown(root, os.getuid(), os.getgid())


def assert_a_planted_log_symlink_is_not_followed(runner_for: RunnerFor, layout: StateLayout,
                                                 host: str, tmp_path: Path) -> None:
    unit = sleeper_unit(host=host)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    log = Path(layout.log_file(unit))
    log.parent.mkdir(parents=True, exist_ok=True)
    log.symlink_to(victim)
    [state] = launch_units([unit], runner_for, layout, ready_timeout_s=10)
    assert state.error and "symbolic link" in state.error, state
    assert victim.read_text() == "precious\n"
    assert not Path(layout.pid_file(unit)).exists()


def assert_unit_runs_and_env_file_is_private(runner_for: RunnerFor, layout: StateLayout,
                                             host: str) -> None:
    unit = sleeper_unit(host=host)
    [state] = launch_units([unit], runner_for, layout, ready_timeout_s=20)
    try:
        assert state.error is None and state.ready, state
        env_file = Path(layout.deploy) / "u0.env"
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert env_file.read_text() == "export APD_TOKEN='s3cret-token'\n"
    finally:
        [stopped] = stop_units([unit], runner_for, layout, grace_s=2)
    assert stopped.action == "stopped", stopped
    assert state.pid is not None
    deadline = time.monotonic() + 5
    while pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(state.pid)
