"""The launcher against real processes on this machine (LocalRunner)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from ascend_pd.launch.launcher import launch_units, read_log, status_units, stop_units
from ascend_pd.launch.units import StateLayout, Unit
from ascend_pd.runners.local import LocalRunner

#: prctl(2) option: orphaned descendants are re-parented to this process
PR_SET_CHILD_SUBREAPER = 36

SERVER = r"""
import http.server, sys, time, signal
port = int(sys.argv[1]); delay = float(sys.argv[2])
print("INFO starting fake server", flush=True)
time.sleep(delay)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health" and len(sys.argv) > 3:
            print(sys.argv[3], flush=True)
            # what uvicorn's access log adds for every probe
            print('INFO:     127.0.0.1:1 - "GET /health HTTP/1.1" 200 OK', flush=True)
        self.send_response(200 if self.path == "/health" else 404); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", port), H)
print("INFO:     Application startup complete.", flush=True)
srv.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unit(name: str, port: int, delay: float = 0.3, *, crash: bool = False,
         on_health: str = "") -> Unit:
    return Unit(name=f"{name}@local", host="local", address="127.0.0.1", role="prefill",
                instance=name, port=port,
                files={f"{name}.sh": (_bash_script(port, delay, crash, on_health), 0o755)},
                script=f"{name}.sh")


def _bash_script(port: int, delay: float, crash: bool, on_health: str = "") -> str:
    if crash:
        return "#!/usr/bin/env bash\necho 'boom: ZMQError: Address already in use'\nexit 3\n"
    code = SERVER.replace("\\", "\\\\")
    extra = f" '{on_health}'" if on_health else ""
    return (f"#!/usr/bin/env bash\nset -euo pipefail\ncat > \"$0.py\" <<'PY'\n{code}PY\n"
            f"exec {sys.executable} \"$0.py\" {port} {delay}{extra}\n")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def layout(tmp_path: Path) -> StateLayout:
    return StateLayout(str(tmp_path / "state dir"))


def test_launch_is_idempotent_status_and_stop_leave_nothing(layout: StateLayout) -> None:
    runner = LocalRunner("local")
    units = [unit("p0", free_port()), unit("d0", free_port(), delay=0.6)]
    first = launch_units(units, lambda _h: runner, layout, ready_timeout_s=20)
    assert [s.action for s in first] == ["started", "started"]
    assert all(s.ready and s.error is None for s in first), first
    again = launch_units(units, lambda _h: runner, layout, ready_timeout_s=20)
    assert [s.action for s in again] == ["already running", "already running"]
    assert [s.pid for s in again] == [s.pid for s in first]

    status = status_units(units, lambda _h: runner, layout)
    assert all(s.alive and s.ready for s in status)
    assert "Application startup complete." in status[0].last_line
    assert "Application startup complete." in read_log(runner, layout, units[0])

    stopped = stop_units(units, lambda _h: runner, layout, grace_s=5)
    assert [s.action for s in stopped] == ["stopped", "stopped"]
    deadline = time.monotonic() + 5
    while any(pid_alive(s.pid) for s in first if s.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(s.pid) for s in first if s.pid)
    after = status_units(units, lambda _h: runner, layout)
    assert not any(s.alive for s in after)
    assert [s.action for s in stop_units(units, lambda _h: runner, layout)] == ["not-running"] * 2


def test_ready_unit_reports_the_log_line_written_by_the_time_it_answered(
        layout: StateLayout) -> None:
    # The proxy logs "listening on ..." as it starts answering; launch once showed the line
    # before it (the start banner) because it read the log before asking /health. The
    # access-log line of the probe itself is no news.
    runner = LocalRunner("local")
    [state] = launch_units([unit("p0", free_port(), on_health="INFO listening, answered")],
                           lambda _h: runner, layout, ready_timeout_s=20)
    try:
        assert state.ready, state
        assert state.last_line == "INFO listening, answered"
    finally:
        stop_units([unit("p0", 0)], lambda _h: runner, layout, grace_s=5)


def test_crash_before_ready_reports_log_tail(layout: StateLayout) -> None:
    runner = LocalRunner("local")
    [state] = launch_units([unit("bad", free_port(), crash=True)], lambda _h: runner, layout,
                           ready_timeout_s=10)
    assert state.error is not None
    assert "exited before becoming ready" in state.error
    assert "Address already in use" in state.error
    assert "ascend-pd diagnose" in state.error


def test_ready_timeout(layout: StateLayout) -> None:
    runner = LocalRunner("local")
    u = unit("slow", free_port(), delay=30)
    [state] = launch_units([u], lambda _h: runner, layout, ready_timeout_s=1.0)
    try:
        assert state.error is not None
        assert "not ready after 1s" in state.error
    finally:
        stop_units([u], lambda _h: runner, layout, grace_s=2)


def test_stop_removes_the_container_of_a_unit_that_needed_sigkill(
        layout: StateLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A docker unit whose container ignores the TERM docker proxies to it: after the grace
    # period the client is killed and the container must be force-removed, or it keeps the NPUs.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls"
    (bin_dir / "docker").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    stubborn = "#!/usr/bin/env bash\ntrap '' TERM\necho 'INFO:     Application startup complete.'\n" \
               "while true; do sleep 0.1; done\n"
    u = Unit(name="dk@local", host="local", address="127.0.0.1", role="decode", instance="dk",
             port=None, files={"dk.sh": (stubborn, 0o755)}, script="dk.sh",
             container="ascend-pd-dk-local")
    runner = LocalRunner("local")
    [started] = launch_units([u], lambda _h: runner, layout, ready_timeout_s=10)
    assert started.pid is not None and started.error is None
    [state] = stop_units([u], lambda _h: runner, layout, grace_s=1)
    assert state.action == "killed, container ascend-pd-dk-local removed"
    assert calls.read_text() == "rm -f ascend-pd-dk-local\n"
    deadline = time.monotonic() + 5  # reaped by init, not by us
    while pid_alive(started.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(started.pid)


def test_stop_does_not_wait_for_an_exited_unit_to_be_reaped(layout: StateLayout) -> None:
    # The unit's adoptive parent may reap late (PID 1 of some VMs took ~2 s per process).
    # Made deterministic here: this test process becomes the subreaper of the unit and does
    # not reap it until the end, so the exited unit stays a zombie while stop runs.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) is not available (Linux >= 3.4 only)")
    runner = LocalRunner("local")
    try:
        (started,) = launch_units([unit("z0", free_port())], lambda _h: runner, layout,
                                  ready_timeout_s=20)
        assert started.ready, started
        (stopped,) = stop_units([unit("z0", 0)], lambda _h: runner, layout, grace_s=3)
        # Before: the zombie kept `kill -0` true for the whole grace, then SIGKILL.
        assert stopped.action == "stopped", stopped
        assert started.pid is not None
        with open(f"/proc/{started.pid}/stat") as stat:
            assert stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not reaped
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
