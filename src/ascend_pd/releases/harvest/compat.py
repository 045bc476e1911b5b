"""The compatibility row of a release: upstream's matrix, else the release's own pins.

Sources, in order of trust:
1. ``docs/source/community/versioning_policy.md`` "Release compatibility matrix" — the release's
   own copy, or a later release's copy (a release's docs are written before it is tagged, so its
   row often first appears in the next release's matrix);
2. the sdist's ``PKG-INFO`` (``Requires-Python``, ``Requires-Dist: torch==…, torch-npu==…``);
3. ``Dockerfile.a3``: which Mooncake the release images install (``pip install
   mooncake-transfer-engine-npu==…`` or a source build of ``MOONCAKE_TAG``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from packaging.version import InvalidVersion, Version

from ascend_pd.releases.models import CompatRow

MATRIX = "docs/source/community/versioning_policy.md"
_NONE = {"", "n/a", "na", "-", "–"}


def _cell(text: str) -> str | None:
    value = text.strip().strip("`")
    return None if value.lower() in _NONE else value


def _bare(version: str | None) -> str | None:
    return version[1:] if version and version.startswith("v") else version


def matrix_rows(root: Path, label: str) -> dict[str, CompatRow]:
    """Rows of the release compatibility matrix in one tree, keyed by vllm-ascend version.

    ``label`` names the tree in each row's source ("0.30.0rc2:docs/...:28").
    """
    path = root / MATRIX
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError:
        return {}
    rows: dict[str, CompatRow] = {}
    header: list[str] | None = None
    in_matrix = False
    for number, line in enumerate(lines, start=1):
        if line.startswith("#"):
            in_matrix = "compatibility matrix" in line.lower()
            header = None
            continue
        if not in_matrix or not line.lstrip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        row = dict(zip(header, cells, strict=False))
        version = _bare(_cell(row.get("vllm ascend", "")))
        try:
            Version(version or "")
        except InvalidVersion:
            continue  # a repeated header or a note row
        torch, torch_npu = None, None
        pair = _cell(row.get("pytorch/torch_npu", ""))
        if pair and "/" in pair:
            torch, torch_npu = (_cell(p) for p in pair.split("/", 1))
        python = _cell(row.get("python", ""))
        rows[str(version)] = CompatRow(
            vllm=_bare(_cell(row.get("vllm", ""))),
            python=python.replace(" ", "") if python else None,
            cann=_cell(row.get("stable cann", "")),
            torch=torch,
            torch_npu=torch_npu,
            mooncake_version=_bare(_cell(row.get("mooncake", ""))),
            source=f"{label}:{MATRIX}:{number}",
        )
    return rows


def pins(root: Path, label: str) -> CompatRow:
    """What PKG-INFO pins (Python range, torch, torch-npu) — for releases without a matrix row."""
    path = root / "PKG-INFO"
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError:
        return CompatRow()
    found: dict[str, str] = {}
    for line in lines:
        if line.startswith("Requires-Python:"):
            found["python"] = line.split(":", 1)[1].strip().replace(" ", "")
        match = re.match(r"Requires-Dist:\s*(torch|torch[-_]npu)\s*==\s*([^\s;]+)", line)
        if match:
            found["torch" if match.group(1) == "torch" else "torch_npu"] = match.group(2)
    return CompatRow(
        python=found.get("python"),
        torch=found.get("torch"),
        torch_npu=found.get("torch_npu"),
        source=f"{label}:PKG-INFO" if found else None,
    )


def mooncake(root: Path) -> tuple[str | None, str | None, str | None]:
    """(package, version, "path:line") of the Mooncake the release's A3 image installs."""
    path = root / "Dockerfile.a3"
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError:
        return None, None, None
    tag = None
    for number, line in enumerate(lines, start=1):
        match = re.search(r"ARG MOONCAKE_TAG=\"?v?([^\"\s]+)", line)
        if match:
            tag = match.group(1)
        match = re.search(r"pip install (mooncake-transfer-engine[\w-]*)==", line)
        if match:
            return match.group(1), tag, f"Dockerfile.a3:{number}"
    for number, line in enumerate(lines, start=1):
        if "github.com/kvcache-ai/Mooncake" in line:
            # built from source: the Python package it installs is mooncake-transfer-engine
            return "mooncake-transfer-engine", tag, f"Dockerfile.a3:{number}"
    return None, None, None


def compat_row(
    version: str, root: Path, rows: dict[str, CompatRow]
) -> tuple[CompatRow, dict[str, str]]:
    """The release's row and per-column sources; ``rows`` is the merged matrix of every tree."""
    row = rows.get(version)
    sources: dict[str, str] = {}
    if row is None:
        # A later rc of a line shares the line's row (0.30.0rc2 is listed as "v0.30.0rc1").
        line = [v for v in rows if Version(v).base_version == Version(version).base_version
                and Version(v) < Version(version)]
        if line:
            row = rows[max(line, key=Version)]
    if row is None:
        row = pins(root, version)
    if row.source:
        sources["compat"] = row.source
    package, tag, where = mooncake(root)
    if package and where:
        row = replace(row, mooncake_package=package, mooncake_version=row.mooncake_version or tag)
        sources["compat.mooncake"] = f"{version}:{where}"
    return row, sources
