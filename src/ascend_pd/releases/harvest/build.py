"""Assemble the release data file from sdists: extract each tree, add its compatibility row.

``harvest()`` is the one command (``scripts/harvest-releases``): list the registry's releases,
fetch the missing sdists into the cache, unpack, extract, write ``vllm_ascend.json`` atomically.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from packaging.version import Version

from ascend_pd.fsutil import atomic_write_text
from ascend_pd.releases.data import DATA_FILE, ReleaseData
from ascend_pd.releases.harvest import compat, registry
from ascend_pd.releases.harvest.extract import extract
from ascend_pd.releases.models import CompatRow, ConnectorFacts, ReleaseFacts

log = logging.getLogger(__name__)

GENERATED_BY = "scripts/harvest-releases (ascend_pd.releases.harvest)"
DATA_PATH = Path(__file__).resolve().parent.parent / DATA_FILE


def facts_from(version: str, raw: dict[str, Any], row: CompatRow, row_sources: dict[str, str]
               ) -> ReleaseFacts:
    """Typed facts from the extractor's raw output for one release."""
    sources: dict[str, str] = dict(row_sources)
    connectors = {}
    for entry in raw["connectors"]:
        if entry["pd"] != "yes":
            continue
        connectors[entry["name"]] = ConnectorFacts(
            name=entry["name"], family=entry["family"], flow=entry["flow"],
            source=entry["source"], module=entry["module"], class_name=entry["class_name"],
        )
    if raw["env_vars_source"]:
        sources["env_vars"] = raw["env_vars_source"]

    def named(key: str) -> str | None:
        name, where = raw[key]
        if where:
            sources[key] = where
        return name  # type: ignore[no-any-return]

    for key in ("ranktable", "use_ascend_direct", "torchair"):
        if raw[key]:
            sources[{"ranktable": "reads_ranktable"}.get(key, key)] = raw[key]
    if raw["additional_config_strict"]:
        sources["additional_config_strict"] = raw["additional_config_strict"]
    torchair = raw["torchair"] is not None
    return ReleaseFacts(
        version=version,
        connectors=connectors,
        env_vars=frozenset(raw["env_vars"]),
        mooncake_abort_timeout_env=named("mooncake_abort_timeout_env"),
        llmdd_abort_timeout_env=named("llmdd_abort_timeout_env"),
        llmdd_rpc_port_env=named("llmdd_rpc_port_env"),
        additional_config_keys=frozenset(raw["additional_config_keys"]),
        additional_config_strict=raw["additional_config_strict"] is not None,
        torchair=torchair,
        graph_mode="torchair" if torchair else "aclgraph",
        reads_ranktable=raw["ranktable"] is not None,
        use_ascend_direct=raw["use_ascend_direct"] is not None,
        compat=row,
        sources=sources,
    )


def build(trees: dict[str, Path]) -> ReleaseData:
    """Release data from unpacked sdist trees keyed by version."""
    ordered = sorted(trees, key=Version)
    rows: dict[str, CompatRow] = {}
    for version in ordered:  # newer matrices correct older ones; dropped rows are kept
        rows.update(compat.matrix_rows(trees[version], version))
    facts = []
    for version in ordered:
        raw = extract(trees[version])
        row, row_sources = compat.compat_row(version, trees[version], rows)
        facts.append(facts_from(version, raw, row, row_sources))
    return ReleaseData(releases=tuple(facts), generated_by=GENERATED_BY)


def render(data: ReleaseData) -> str:
    """The data file's text (stable: sorted keys, one fact per line where short)."""
    return json.dumps(data.to_dict(), indent=1, sort_keys=False) + "\n"


def unpacked_trees(
    versions: Iterable[str] | None = None,
    cache: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Fetch (when missing) and unpack the sdists; all registry releases when versions is None."""
    listed = registry.list_sdists()
    wanted = set(versions) if versions is not None else None
    folder = cache or registry.cache_dir()
    trees = {}
    for sdist in listed:
        if wanted is not None and sdist.version not in wanted:
            continue
        if progress:
            progress(sdist.version)
        archive = registry.fetch(sdist, folder)
        trees[sdist.version] = registry.unpack(archive, folder / "unpacked")
    return trees


def harvest(out: Path = DATA_PATH, progress: Callable[[str], None] | None = None) -> ReleaseData:
    """Re-harvest every release and write the data file."""
    data = build(unpacked_trees(progress=progress))
    atomic_write_text(out, render(data), mode=0o644)
    return data
