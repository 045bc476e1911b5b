"""Start, watch and stop units on their hosts through the runners.

Readiness = the HTTP ``/health`` answers 200 AND the log shows the ready marker (vLLM prints
``Application startup complete.`` only once its API server listens). Every wait has a deadline.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from ascend_pd.errors import RunnerError
from ascend_pd.launch import remote
from ascend_pd.launch.units import StateLayout, Unit
from ascend_pd.runners.base import CommandRunner

log = logging.getLogger(__name__)

RunnerFor = Callable[[str], CommandRunner]
Progress = Callable[[str], None]


@dataclass
class UnitState:
    """What launch/status found for one unit."""

    name: str
    host: str
    role: str
    instance: str
    port: int | None
    action: str = ""
    pid: int | None = None
    alive: bool = False
    ready: bool = False
    uptime_s: float | None = None
    last_line: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LaunchReport:
    units: list[UnitState] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(u.error is None and (u.ready or u.action == "dry-run") for u in self.units)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "units": [u.to_dict() for u in self.units]}


def _state(unit: Unit) -> UnitState:
    return UnitState(unit.name, unit.host, unit.role, unit.instance, unit.port)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``url`` answers 200 within ``timeout`` (any error = not ready yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http only
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _url(unit: Unit, path: str) -> str:
    host = f"[{unit.address}]" if ":" in unit.address else unit.address
    return f"http://{host}:{unit.port}{path}"


def probe(runner: CommandRunner, layout: StateLayout, unit: Unit) -> UnitState:
    """Ask the host about one unit: pid, alive, marker seen, uptime, last log line."""
    state = _state(unit)
    marker = unit.ready_marker or ""
    # Health first, log line second: a server logs its "listening" line before it answers,
    # so a line read after a good /health already says so. Read the other way round, a unit
    # that came up between the two reads was reported ready with its previous log line
    # (the proxy's "=== start" banner instead of "listening on ...").
    answered = unit.serves_api and http_ok(_url(unit, "/health"))
    result = runner.run(remote.sh(remote.STATUS, layout.root, layout.pid_file(unit),
                                  layout.log_file(unit), marker, unit.name), timeout=15)
    lines = result.stdout.splitlines()
    # a pid file that names some other process (stale, foreign, 1 or -1): say so
    state.error = result.stderr.strip() or None
    fields = dict(kv.split("=", 1) for kv in (lines[0].split() if lines else []) if "=" in kv)
    state.pid = int(fields["pid"]) if fields.get("pid") else None
    state.alive = fields.get("alive") == "1"
    if fields.get("started") and fields.get("now"):
        state.uptime_s = float(int(fields["now"]) - int(fields["started"]))
    state.last_line = lines[1] if len(lines) > 1 else ""
    marker_ok = unit.ready_marker is None or fields.get("marker") == "1"
    http = answered if unit.serves_api else state.alive
    state.ready = state.alive and marker_ok and http
    return state


def _start_one(runner: CommandRunner, layout: StateLayout, unit: Unit) -> UnitState:
    state = _state(unit)
    if unit.files:
        triples, contents = remote.push_args(unit.files)
        pushed = runner.run(remote.sh(remote.PUSH, layout.root, layout.deploy, *triples),
                            timeout=30, stdin=contents)
        if pushed.failed:
            state.error = f"could not write launch files: {pushed.tail('stderr')}"
            return state
    # The marker is in START's own environment, not only set for the child: until the child
    # execs, /proc/PID/environ shows what its parent was started with, and a status probe in
    # that moment must already recognise the unit.
    started = runner.run(remote.sh(remote.START, layout.root, layout.pid_file(unit),
                                   layout.log_file(unit), layout.script_path(unit), unit.name),
                         timeout=30, env={remote.UNIT_MARKER: unit.name})
    words = started.stdout.split()
    if started.failed or len(words) < 2:
        state.error = f"start failed: {started.tail('stderr') or started.tail('stdout')}"
        return state
    state.action = "already running" if words[0] == "running" else "started"
    state.pid = int(words[1])
    return state


def _wait_ready(runner: CommandRunner, layout: StateLayout, unit: Unit, state: UnitState,
                timeout_s: float, progress: Progress | None) -> UnitState:
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        now = probe(runner, layout, unit)
        now.action = state.action
        if now.ready:
            if progress:
                progress(f"{unit.name}: ready (pid {now.pid})")
            return now
        if not now.alive:
            tail = runner.run(remote.sh(remote.TAIL, layout.log_file(unit), "20"), timeout=10)
            now.error = (f"exited before becoming ready; last log lines:\n{tail.stdout.rstrip()}"
                         f"\n(run `ascend-pd diagnose --host {unit.host} --role {unit.role}`)")
            return now
        if time.monotonic() >= deadline:
            now.error = (f"not ready after {timeout_s:g}s (health "
                         f"{'ok' if http_ok(_url(unit, '/health')) else 'failing'}); "
                         f"last log line: {now.last_line}")
            return now
        time.sleep(delay)
        # At most 0.5 s between probes: a probe is one small sh and one HTTP GET, while
        # waiting up to 2 s after a unit became ready added ~1-2 s per launch phase
        # (servers, then the proxy) to every launch and to the demo.
        delay = min(delay * 1.5, 0.5)


def launch_units(
    units: Sequence[Unit], runner_for: RunnerFor, layout: StateLayout, *,
    ready_timeout_s: float = 900.0, progress: Progress | None = None, max_parallel: int = 32,
) -> list[UnitState]:
    """Start ``units`` in parallel (idempotent) and wait until each is ready or failed."""

    def one(unit: Unit) -> UnitState:
        runner = runner_for(unit.host)
        state = _start_one(runner, layout, unit)
        if state.error:
            return state
        if progress:
            progress(f"{unit.name}: {state.action} (pid {state.pid}), waiting for readiness")
        return _wait_ready(runner, layout, unit, state, ready_timeout_s, progress)

    return _each(units, one, max_parallel)


def _each(units: Sequence[Unit], work: Callable[[Unit], UnitState],
          max_parallel: int = 32) -> list[UnitState]:
    """Run ``work`` for every unit in parallel; a host that fails is that unit's error."""

    def guarded(unit: Unit) -> UnitState:
        try:
            return work(unit)
        except RunnerError as exc:
            state = _state(unit)
            state.error = exc.message
            return state

    if not units:
        return []
    with ThreadPoolExecutor(max_workers=min(max_parallel, len(units))) as pool:
        return list(pool.map(guarded, units))


def status_units(
    units: Sequence[Unit], runner_for: RunnerFor, layout: StateLayout
) -> list[UnitState]:
    return _each(units, lambda unit: probe(runner_for(unit.host), layout, unit))


def stop_units(units: Sequence[Unit], runner_for: RunnerFor, layout: StateLayout, *,
               grace_s: int = 20) -> list[UnitState]:
    """SIGTERM each unit's process group, then SIGKILL after ``grace_s``."""

    def one(unit: Unit) -> UnitState:
        state = _state(unit)
        result = runner_for(unit.host).run(
            remote.sh(remote.STOP, layout.root, layout.pid_file(unit), str(grace_s),
                      unit.container or "", unit.name),
            timeout=grace_s + 15)
        words = result.stdout.split()
        state.action = words[0] if words else "unknown"
        if result.failed or state.action == "refused":
            # nothing was signalled: an unsafe state dir, or a pid file that is not the unit's
            state.error = (result.stdout.strip().removeprefix("refused ")
                           if state.action == "refused" else result.tail("stderr"))
            return state
        if words[2:3] == ["container-removed"]:
            state.action = f"killed, container {unit.container} removed"
        state.pid = int(words[1]) if len(words) > 1 else None
        return state

    return _each(units, one)


def read_log(runner: CommandRunner, layout: StateLayout, unit: Unit, *, lines: int = 50) -> str:
    result = runner.run(remote.sh(remote.TAIL, layout.log_file(unit), str(lines)), timeout=15)
    if result.failed:
        raise RunnerError(f"{unit.host}: no log for {unit.name} ({result.tail('stderr')})",
                          host=unit.host, hint="was it launched? `ascend-pd status -c pd.yaml`")
    return result.stdout


def follow_log(runner: CommandRunner, layout: StateLayout, unit: Unit,
               emit: Callable[[str], None], *, poll_s: float = 0.5,
               until: Callable[[], bool] = lambda: False) -> None:
    """Stream log bytes appended from now on to ``emit`` until ``until()`` is true."""
    size = runner.run(["stat", "-c", "%s", layout.log_file(unit)], timeout=15)
    offset = int(size.stdout.strip() or 0) + 1 if size.ok else 1
    while not until():
        result = runner.run(remote.sh(remote.READ_FROM, layout.log_file(unit), str(offset)),
                            timeout=15)
        if result.stdout:
            emit(result.stdout)
            offset += len(result.stdout.encode())
        time.sleep(poll_s)
