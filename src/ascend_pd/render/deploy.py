"""Write (or check) a deployment directory: per (instance, host) a launch script and env file,
the proxy script, and ``manifest.json`` saying what runs where.

Layout of ``out_dir``::

    <instance>@<host>.sh    launch script (mode 755), execs the server in the foreground
    <instance>@<host>.env   its environment (sourced by the script; mode 600: may hold secrets)
    proxy@<host>.sh         the P/D proxy
    manifest.json           hosts, roles, scripts, ports, api/headless, log and pid paths
"""

from __future__ import annotations

import difflib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ascend_pd import __version__
from ascend_pd.findings import Finding
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.render.checks import validate_plan
from ascend_pd.render.findings import ValidationReport
from ascend_pd.render.plan import DeploymentPlan, ProcessPlan, build_plan
from ascend_pd.render.templates import render_template
from ascend_pd.spec.models import ClusterSpec

MANIFEST: Final[str] = "manifest.json"
#: the ``schema`` of ``render --json``'s data (docs/json.md)
SCHEMA: Final[str] = "ascend-pd/render/v1"
SCRIPT_MODE: Final[int] = 0o755
DATA_MODE: Final[int] = 0o644
#: env files may hold secrets (hosts[].env, instances[].env: API keys, tokens): owner only
SECRET_MODE: Final[int] = 0o600


@dataclass(frozen=True)
class RenderedFile:
    name: str
    text: str
    mode: int


@dataclass
class RenderResult:
    """What :func:`render_deploy` wrote."""

    out_dir: str
    files: list[str]
    changed: list[str]
    removed: list[str]
    processes: int
    proxy: bool
    #: the plan's warnings (its errors stop the render)
    warnings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "out_dir": self.out_dir, "files": self.files,
                "changed": self.changed, "removed": self.removed, "processes": self.processes,
                "proxy": self.proxy, "warnings": [w.to_dict() for w in self.warnings]}


@dataclass
class DeployCheck:
    """Differences between a deployment directory and what the spec renders to."""

    out_dir: str
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    diff: str = ""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.extra)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": self.out_dir, "up_to_date": self.ok, "missing": self.missing,
                "changed": self.changed, "extra": self.extra, "diff": self.diff}


def _header(spec_path: str | None, title: str) -> dict[str, Any]:
    return {"version": __version__, "spec_path": spec_path or "<in-memory spec>",
            "title": title}


def unit_files(name: str) -> tuple[str, str]:
    """(launch script, env file) of the unit ``name`` (``<instance>@<host>``)."""
    return f"{name}.sh", f"{name}.env"


def manifest_of(plan: DeploymentPlan, spec_path: str | None) -> dict[str, Any]:
    """What runs where: the manifest ``render`` writes and ``launch`` saves in the state dir
    (``status`` / ``stop`` / ``logs`` read it back instead of re-rendering the spec)."""
    spec = plan.spec

    def entry(p: ProcessPlan) -> dict[str, Any]:
        script, env_file = unit_files(p.name)
        return {"name": p.name, "host": p.host, "address": p.address, "role": p.role,
                "instance": p.instance, "serving": p.serving, "port": p.api_port,
                "dp_size": p.dp_size, "dp_size_local": p.dp_size_local,
                "dp_start_rank": p.dp_start_rank, "devices": p.devices,
                "visible_devices": p.visible_devices,
                "engine_id": p.kv_transfer_config.get("engine_id"),
                "runtime": "docker" if p.docker_argv else "host", "container": p.container,
                "script": script, "env_file": env_file, "log": p.log, "pid": p.pid,
                "simulated_placeholder": plan.sim and not p.head}

    proxy = None
    if plan.proxy is not None:
        proxy = {"name": f"proxy@{plan.proxy.host}", "host": plan.proxy.host,
                 "address": plan.proxy.address, "port": plan.proxy.port,
                 "script": f"proxy@{plan.proxy.host}.sh", "prefill": plan.proxy.prefill,
                 "decode": plan.proxy.decode, "flow": plan.proxy.flow,
                 "log": plan.proxy.log, "pid": plan.proxy.pid}
    return {
        "ascend_pd_manifest_version": 1,
        "generated_by": f"ascend-pd {__version__}",
        "spec": spec_path,
        "name": plan.name,
        "connector": plan.connector,
        "vllm_ascend_version": plan.vllm_ascend_version,
        # the known release whose facts were used (differs when the version is unknown)
        "release_facts": plan.release.basis if plan.release else None,
        "sim": plan.sim,
        "state_dir": spec.state_dir,
        "hosts": {h.name: h.address for h in spec.hosts},
        # Start order: prefill before decode, DP heads before their headless hosts.
        "processes": [entry(p) for p in plan.processes],
        "proxy": proxy,
        "ports": [{"host": c.host, "start": c.start, "end": c.end, "what": c.what}
                  for c in plan.ports.claims],
    }


def prepare(spec: ClusterSpec, *, python: str | None = None,
            action: str = "rendered") -> tuple[DeploymentPlan, ValidationReport]:
    """Build the plan of ``spec`` (once) and validate it.

    Raises:
        SpecError: validation found errors (the deployment would not work).
    """
    plan = build_plan(spec, python=python)
    report = validate_plan(plan)
    report.raise_for_errors(action)
    return plan, report


def render_files(plan: DeploymentPlan, *, spec_path: str | None = None) -> list[RenderedFile]:
    """Render every file of a validated plan in memory (nothing is written).

    Raises:
        RenderError: a template failed.
    """
    common = {"sim": plan.sim, "python": plan.python}
    files: list[RenderedFile] = []
    for p in plan.processes:
        script, env_file = unit_files(p.name)
        files.append(RenderedFile(env_file, render_template(
            "_env.sh.j2", p=p, **common,
            **_header(spec_path, f"environment of {p.name} ({p.role}, {p.serving}), "
                                 f"sourced by {script}")), SECRET_MODE))
        files.append(RenderedFile(script, render_template(
            "launch.sh.j2", p=p, env_file=env_file, **common,
            **_header(spec_path, f"launch script of {p.name}")), SCRIPT_MODE))
    if plan.proxy is not None:
        files.append(RenderedFile(f"proxy@{plan.proxy.host}.sh", render_template(
            "proxy.sh.j2", proxy=plan.proxy, **common,
            **_header(spec_path, f"P/D proxy on {plan.proxy.host}")), SCRIPT_MODE))
    manifest = manifest_of(plan, spec_path)
    files.append(RenderedFile(MANIFEST, json.dumps(manifest, indent=2) + "\n", DATA_MODE))
    return files


def _previous_files(out: Path) -> set[str]:
    # Only files an earlier render listed are ever removed: never a user's own files.
    try:
        old = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    names: set[str] = set()
    for proc in old.get("processes") or []:
        names.update(str(proc.get(k)) for k in ("script", "env_file") if proc.get(k))
    if isinstance(old.get("proxy"), dict) and old["proxy"].get("script"):
        names.add(str(old["proxy"]["script"]))
    return {n for n in names if "/" not in n and not n.startswith(".")}


def render_deploy(
    spec: ClusterSpec, out_dir: str | Path, spec_path: str | None = None,
    *, python: str | None = None,
) -> RenderResult:
    """Render the deployment of ``spec`` into ``out_dir`` (each file written atomically).

    Args:
        spec: the loaded spec.
        out_dir: the deployment directory (created if missing).
        spec_path: shown in every file header and in the manifest.
        python: sim mode only: the interpreter that runs the simulated server (default: the
            interpreter running this code; ``ASCEND_PD_PYTHON`` overrides it at launch).

    Returns:
        The files written, those whose content changed, and stale files removed.
    """
    out = Path(out_dir)
    plan, report = prepare(spec, python=python)
    files = render_files(plan, spec_path=spec_path)
    changed, removed = write_files(out, files, _previous_files(out))
    return RenderResult(out_dir=str(out), files=[f.name for f in files], changed=changed,
                        removed=removed,
                        processes=sum(1 for f in files if f.name.endswith(".env")),
                        proxy=spec.proxy is not None,
                        warnings=report.warnings)


def check_deploy(
    spec: ClusterSpec, out_dir: str | Path, spec_path: str | None = None,
    *, python: str | None = None,
) -> DeployCheck:
    """Compare ``out_dir`` with what :func:`render_deploy` would write (``--check``)."""
    out = Path(out_dir)
    files = render_files(prepare(spec, python=python)[0], spec_path=spec_path)
    return compare_files(out, files, _previous_files(out))


def write_files(out: Path, files: list[RenderedFile], previous: set[str]
                ) -> tuple[list[str], list[str]]:
    """Write ``files`` under ``out`` atomically; remove those of ``previous`` (names an
    earlier render listed) that are no longer rendered. Returns (changed, removed)."""
    changed = []
    for f in files:
        dest = out / f.name
        try:
            same = dest.read_text(encoding="utf-8") == f.text
        except OSError:
            same = False
        if not same:
            changed.append(f.name)
        atomic_write_text(dest, f.text, mode=f.mode)
    current = {f.name for f in files}
    removed = sorted(n for n in previous - current if (out / n).is_file())
    for name in removed:
        (out / name).unlink()
    return changed, removed


def compare_files(out: Path, files: list[RenderedFile], previous: set[str]) -> DeployCheck:
    """What differs between ``out`` and ``files`` (``render --check``): missing, changed
    (content or executable bit, with a unified diff) and stale files."""
    result = DeployCheck(out_dir=str(out))
    diffs: list[str] = []
    for f in files:
        dest = out / f.name
        if not dest.is_file():
            result.missing.append(f.name)
            continue
        text = dest.read_text(encoding="utf-8")
        mode = stat.S_IMODE(os.stat(dest).st_mode)
        if text != f.text:
            result.changed.append(f.name)
            diffs.extend(difflib.unified_diff(
                text.splitlines(keepends=True), f.text.splitlines(keepends=True),
                fromfile=f"{dest} (on disk)", tofile=f"{dest} (rendered)"))
        elif mode & 0o111 != f.mode & 0o111:
            result.changed.append(f.name)
            diffs.append(f"{dest}: mode {mode:o}, expected {f.mode:o}\n")
    current = {f.name for f in files}
    result.extra = sorted(n for n in previous - current if (out / n).is_file())
    result.diff = "".join(diffs)
    return result
