"""Commented example specs shipped in templates/specs/ (used by `ascend-pd init`)."""

from __future__ import annotations

from ascend_pd.errors import UsageError
from ascend_pd.resources import data_dir


def shapes() -> list[str]:
    """Names of the shipped example shapes."""
    return sorted(p.stem for p in (data_dir("templates") / "specs").glob("*.yaml"))


def example_spec(shape: str) -> str:
    """The commented YAML text of example ``shape``."""
    path = data_dir("templates") / "specs" / f"{shape}.yaml"
    if not path.is_file():
        raise UsageError(f"unknown shape '{shape}'", hint=f"use one of: {', '.join(shapes())}")
    return path.read_text(encoding="utf-8")
