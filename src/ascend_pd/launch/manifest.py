"""The launched manifest: what ``launch`` started, saved on the controller in the state dir.

``launch`` writes it (atomically) before starting anything, so that ``status``, ``stop`` and
``logs`` act on what was launched, not on what the spec renders to now: they keep working
while the spec is being edited, even when it has a P/D error. Without a saved manifest (never
launched from this machine) they fall back to the spec's plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ascend_pd.errors import UsageError
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.launch.units import VLLM_READY, Unit
from ascend_pd.render.deploy import RenderedFile

#: name of the saved manifest inside the spec's state_dir (on the controller)
LAUNCHED: Final[str] = "manifest.json"


def manifest_path(state_dir: str) -> Path:
    return Path(state_dir).expanduser() / LAUNCHED


def save_manifest(state_dir: str, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` to ``<state_dir>/manifest.json`` on this machine (atomic)."""
    try:
        return atomic_write_text(manifest_path(state_dir), json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise UsageError(
            f"cannot save the launch manifest in {state_dir}: {exc.strerror or exc}",
            hint="status, stop and logs read it from there; make state_dir writable on this "
                 "machine or point state_dir in pd.yaml at a writable directory",
        ) from exc


def load_manifest(state_dir: str) -> dict[str, Any] | None:
    """The saved manifest, or None when nothing was launched from this machine.

    Raises:
        UsageError: the file exists but is not a manifest (edited or truncated by hand).
    """
    path = manifest_path(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})",
                         hint="launch again to rewrite it") from exc
    if not isinstance(data, dict) or "processes" not in data:
        raise UsageError(f"{path} is not an ascend-pd launch manifest",
                         hint="launch again to rewrite it")
    return data


def manifest_units(manifest: Mapping[str, Any],
                   files: Mapping[str, RenderedFile] | None = None) -> list[Unit]:
    """The units of ``manifest`` in start order; with ``files``, each carries its own files."""
    def own(*names: str) -> dict[str, tuple[str, int]]:
        return {n: (files[n].text, files[n].mode) for n in names} if files else {}

    units: list[Unit] = []
    for proc in manifest["processes"]:
        head = proc["serving"] == "api"
        units.append(Unit(
            name=proc["name"], host=proc["host"], address=proc["address"], role=proc["role"],
            instance=proc["instance"], port=proc["port"],
            files=own(proc["script"], proc["env_file"]), script=proc["script"],
            # Headless DP hosts print no API-ready line: being alive is all we can check.
            ready_marker=VLLM_READY if head else None, container=proc.get("container"),
        ))
    proxy = manifest.get("proxy")
    if proxy:
        units.append(Unit(
            name=proxy["name"], host=proxy["host"], address=proxy["address"], role="proxy",
            instance="proxy", port=proxy["port"], files=own(proxy["script"]),
            script=proxy["script"], ready_marker=None,
        ))
    return units
