"""The verbatim hccn_tool / npu-smi captures of the reference (tests/data/hccn)."""

from __future__ import annotations

from pathlib import Path

CAPTURES = Path(__file__).parent / "data" / "hccn"


def sample(name: str) -> str:
    """A verbatim reference sample."""
    return (CAPTURES / name).read_text(encoding="utf-8")
