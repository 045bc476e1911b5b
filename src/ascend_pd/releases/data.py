"""Load the checked-in release data and answer "which facts hold for version X".

The data file is read once per process (it is ~100 KB of JSON) and cached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ascend_pd.errors import SpecError
from ascend_pd.releases.models import ReleaseFacts, Resolution, parse_version

DATA_FILE = "vllm_ascend.json"


@dataclass(frozen=True)
class ReleaseData:
    """Every known release, oldest first, plus how the data was made."""

    releases: tuple[ReleaseFacts, ...]
    generated_by: str

    def by_version(self) -> dict[str, ReleaseFacts]:
        return {r.version: r for r in self.releases}

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_by": self.generated_by,
            "releases": [r.to_dict() for r in self.releases],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseData:
        facts = [ReleaseFacts.from_dict(r) for r in data["releases"]]
        facts.sort(key=lambda r: r.parsed)
        return cls(releases=tuple(facts), generated_by=str(data.get("generated_by", "")))


@lru_cache(maxsize=1)
def load() -> ReleaseData:
    """The packaged release data."""
    text = resources.files("ascend_pd.releases").joinpath(DATA_FILE).read_text("utf-8")
    return ReleaseData.from_dict(json.loads(text))


def known_releases() -> list[str]:
    """Every release in the data, ascending in PEP 440 order."""
    return [r.version for r in load().releases]


def newest_stable() -> str:
    """The newest final release (no rc, no dev; a .postN counts), e.g. "0.23.0.post1"."""
    finals = [r for r in load().releases if not r.parsed.is_prerelease]
    return finals[-1].version


def resolve(version_text: str) -> Resolution:
    """The facts for ``version_text``: its own when known, else the nearest older release's.

    Raises:
        SpecError: not a PEP 440 version, or older than every known release.
    """
    wanted = parse_version(version_text)
    releases = load().releases
    for facts in releases:
        if facts.parsed == wanted:
            return Resolution(version_text, facts, True, facts.version, None)
    older = [r for r in releases if r.parsed < wanted]
    if not older:
        raise SpecError(
            f"vllm-ascend {version_text} is older than every release ascend-pd knows "
            f"({releases[0].version} … {releases[-1].version})",
            hint=f"use {releases[0].version} or newer (P/D disaggregation starts there)",
        )
    basis = older[-1]
    if wanted > releases[-1].parsed:
        why = f"newer than the newest known release {basis.version}"
    else:
        why = f"not a release ascend-pd knows (nearest older known release: {basis.version})"
    note = (
        f"vllm-ascend {version_text} is {why}; using the facts of {basis.version}"
        " (run scripts/harvest-releases to add it)"
    )
    return Resolution(version_text, basis, False, basis.version, note)
