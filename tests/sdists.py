"""Real vllm-ascend sdists for tests, downloaded on first use into the cache outside the tree.

The cache is ``$XDG_CACHE_HOME/ascend-pd/sdists`` (``~/.cache`` by default), shared with
``scripts/harvest-releases``; each file is checked against the registry's sha256. Without
network access a test that needs a missing sdist fails under CI (CI=true) and skips elsewhere,
saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from packaging.version import Version

from ascend_pd.errors import AscendPDError
from ascend_pd.releases.harvest import registry

#: The releases whose facts are golden (issue 12): the last torchair release, the first
#: aclgraph LTS, the abort-timeout rename, the current stable and the newest rc.
GOLDEN = ("0.11.0", "0.13.0", "0.18.0", "0.23.0.post1", "0.30.0rc2")

_LISTED: list[registry.Sdist] = []


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"real vllm-ascend sdists are required in CI and could not be fetched: {why}")
    pytest.skip(f"needs the real vllm-ascend sdists (package registry unreachable: {why})")


def vllm_tree(version: str) -> Path:
    """vLLM's own unpacked sdist (its `vllm serve` flags and env names), fetched when missing."""
    cache = registry.cache_dir()
    archive = cache / f"vllm-{version}.tar.gz"
    if not archive.exists():
        try:
            listed = {s.version: s for s in registry.list_sdists("vllm", Version(version))}
            registry.fetch(listed[version], cache)
        except (AscendPDError, KeyError) as exc:
            _unavailable(str(exc))
    return registry.unpack(archive, cache / "unpacked")


def cached_trees(versions: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Unpacked trees of ``versions`` (default: every sdist already cached, golden ones fetched)."""
    cache = registry.cache_dir()
    wanted = list(versions or GOLDEN)
    missing = [v for v in wanted if not (cache / f"vllm_ascend-{v}.tar.gz").exists()]
    trees: dict[str, Path] = {}
    if missing:
        try:
            if not _LISTED:
                _LISTED.extend(registry.list_sdists())
            by_version = {s.version: s for s in _LISTED}
            for version in missing:
                registry.fetch(by_version[version], cache)
        except (AscendPDError, KeyError) as exc:
            _unavailable(str(exc))
    names = set(wanted)
    if versions is None:
        names |= {p.name.removeprefix("vllm_ascend-").removesuffix(".tar.gz")
                  for p in cache.glob("vllm_ascend-*.tar.gz")}
    for version in names:
        trees[version] = registry.unpack(cache / f"vllm_ascend-{version}.tar.gz",
                                         cache / "unpacked")
    return trees
