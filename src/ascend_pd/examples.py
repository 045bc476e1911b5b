"""Commented example specs shipped in templates/specs/ (used by `ascend-pd init`).

The current shapes say ``vllm_ascend_version: "@newest_stable@"``; :func:`example_spec`
writes the newest stable release of the packaged release data there, so ``init`` targets
today's release without a version constant in code (re-harvesting moves it). The legacy
LLMDataDist shape names its release literally: it exists for hosts still on 0.11.x.
"""

from __future__ import annotations

from typing import Final

from ascend_pd.errors import UsageError
from ascend_pd.resources import data_dir

#: where a shipped shape asks for the current stable release
NEWEST_STABLE_MARK: Final[str] = "@newest_stable@"
DEFAULT_SHAPE: Final[str] = "a2-1p1d"


def shapes() -> list[str]:
    """Names of the shipped example shapes."""
    return sorted(p.stem for p in (data_dir("templates") / "specs").glob("*.yaml"))


def example_spec(shape: str) -> str:
    """The commented YAML text of example ``shape``, for the current stable release."""
    path = data_dir("templates") / "specs" / f"{shape}.yaml"
    if not path.is_file():
        raise UsageError(f"unknown shape '{shape}'", hint=f"use one of: {', '.join(shapes())}")
    text = path.read_text(encoding="utf-8")
    if NEWEST_STABLE_MARK in text:
        from ascend_pd.releases import newest_stable  # the data is read only when needed

        text = text.replace(NEWEST_STABLE_MARK, newest_stable())
    return text
