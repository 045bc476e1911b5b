"""Library API of launch / status / stop / logs over a spec (what the CLI and demo call)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ascend_pd.errors import LaunchError, UsageError
from ascend_pd.launch.launcher import (
    UnitState,
    follow_log,
    launch_units,
    read_log,
    status_units,
    stop_units,
)
from ascend_pd.launch.manifest import load_manifest, manifest_units, save_manifest
from ascend_pd.launch.units import StateLayout, Unit
from ascend_pd.render.deploy import manifest_of, prepare, render_files
from ascend_pd.render.plan import build_plan
from ascend_pd.runners.base import CommandRunner
from ascend_pd.spec.models import ClusterSpec

RoleFilter = Literal["prefill", "decode", "proxy", "all"]
RunnerFor = Callable[[str], CommandRunner]


def plan_units(spec: ClusterSpec, *, spec_path: str | None = None,
               python: str | None = None) -> tuple[list[Unit], dict[str, Any]]:
    """Plan, validate and render ``spec`` once: its units (in start order, with their files)
    and the manifest that describes them.

    Raises:
        SpecError: the spec has P/D errors; nothing is launched.
    """
    plan, _report = prepare(spec, python=python, action="launched")
    files = {f.name: f for f in render_files(plan, spec_path=spec_path)}
    manifest = manifest_of(plan, spec_path)
    return manifest_units(manifest, files), manifest


def launched_units(spec: ClusterSpec) -> list[Unit]:
    """The units ``launch`` started (its saved manifest), or, when nothing was launched from
    this machine, the units the spec plans now (no validation: names are all that is needed)."""
    manifest = load_manifest(spec.state_dir)
    if manifest is None:
        manifest = manifest_of(build_plan(spec), None)
    return manifest_units(manifest)


def select(units: Sequence[Unit], role: RoleFilter = "all", host: str | None = None,
           instance: str | None = None) -> list[Unit]:
    chosen = [u for u in units if (role == "all" or u.role == role)
              and (host is None or u.host == host)
              and (instance is None or u.instance == instance or u.name == instance)]
    if not chosen:
        raise UsageError(
            f"nothing matches role={role} host={host or '*'} instance={instance or '*'}",
            hint="see the names with `ascend-pd status -c pd.yaml`",
        )
    return chosen


@dataclass
class LaunchResult:
    units: list[UnitState] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(u.error is None and (self.dry_run or u.ready) for u in self.units)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "dry_run": self.dry_run, "units": [u.to_dict() for u in self.units]}


def launch(
    spec: ClusterSpec, runner_for: RunnerFor, *, role: RoleFilter = "all",
    host: str | None = None, instance: str | None = None, dry_run: bool = False,
    spec_path: str | None = None,
    python: str | None = None, ready_timeout_s: float = 900.0,
    progress: Callable[[str], None] | None = None,
) -> LaunchResult:
    """Start the selected units; with ``role="all"`` servers first, then the proxy.

    Raises:
        LaunchError: a server failed, so the proxy was not started (the report is attached).
    """
    planned, manifest = plan_units(spec, spec_path=spec_path, python=python)
    units = select(planned, role, host, instance)
    layout = StateLayout(spec.state_dir)
    result = LaunchResult(dry_run=dry_run)
    if dry_run:
        for unit in units:
            state = UnitState(unit.name, unit.host, unit.role, unit.instance, unit.port,
                              action="dry-run")
            state.last_line = f"would run {layout.script_path(unit)} on {unit.host}"
            result.units.append(state)
        return result
    # Saved before anything starts, so a launch that fails half-way can still be stopped.
    save_manifest(spec.state_dir, manifest)
    servers = [u for u in units if u.role != "proxy"]
    proxies = [u for u in units if u.role == "proxy"]
    result.units += launch_units(servers, runner_for, layout, ready_timeout_s=ready_timeout_s,
                                 progress=progress)
    failed = [u for u in result.units if u.error]
    if proxies and failed:
        raise LaunchError(
            f"{len(failed)} server(s) failed, proxy not started: "
            + "; ".join(f"{u.name}: {(u.error or '').splitlines()[0]}" for u in failed),
            hint="read the log with `ascend-pd logs -c pd.yaml NAME` or "
                 "`ascend-pd diagnose --host H --role R -c pd.yaml`",
        )
    result.units += launch_units(proxies, runner_for, layout, ready_timeout_s=min(
        ready_timeout_s, 60.0), progress=progress)
    return result


def status(spec: ClusterSpec, runner_for: RunnerFor, *, role: RoleFilter = "all",
           host: str | None = None, instance: str | None = None) -> list[UnitState]:
    """Probe the launched units (see :func:`launched_units`)."""
    units = select(launched_units(spec), role, host, instance)
    return status_units(units, runner_for, StateLayout(spec.state_dir))


def stop(spec: ClusterSpec, runner_for: RunnerFor, *, role: RoleFilter = "all",
         host: str | None = None, instance: str | None = None,
         grace_s: int = 20) -> list[UnitState]:
    """Stop the launched units: the proxy first (no new requests), then the servers."""
    units = select(launched_units(spec), role, host, instance)
    layout = StateLayout(spec.state_dir)
    states = stop_units([u for u in units if u.role == "proxy"], runner_for, layout,
                        grace_s=grace_s)
    return states + stop_units([u for u in units if u.role != "proxy"], runner_for, layout,
                               grace_s=grace_s)


def logs(spec: ClusterSpec, runner_for: RunnerFor, name: str, *, lines: int = 50,
         follow: bool = False, emit: Callable[[str], None] | None = None,
         until: Callable[[], bool] = lambda: False) -> str:
    """The last ``lines`` of one unit's log; with ``follow``, stream to ``emit``."""
    [unit] = select(launched_units(spec), "all", None, name)[:1]
    layout = StateLayout(spec.state_dir)
    runner = runner_for(unit.host)
    text = read_log(runner, layout, unit, lines=lines)
    if follow and emit is not None:
        follow_log(runner, layout, unit, emit, until=until)
    return text
