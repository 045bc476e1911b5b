"""Pure argv builders for ``npu-smi info`` queries.

npu-smi addresses a *card* (``-i``, the NPU ID) and a chip on it (``-c``); hccn_tool
addresses the chip's physical id. ``info_mapping`` (``-m``) is the bridge between the two.
"""

from __future__ import annotations


def info(tool: str) -> tuple[str, ...]:
    """``npu-smi info``: the device table (A2 and A3 layouts)."""
    return (tool, "info")


def info_list(tool: str) -> tuple[str, ...]:
    """``npu-smi info -l``: card count and chips per card."""
    return (tool, "info", "-l")


def info_mapping(tool: str) -> tuple[str, ...]:
    """``npu-smi info -m``: card / chip / logic id (/ phy id on A3) / name per chip."""
    return (tool, "info", "-m")


def board(tool: str, card: int, chip: int | None = None) -> tuple[str, ...]:
    """``npu-smi info -t board -i CARD [-c CHIP]``: board and chip identity."""
    argv = (tool, "info", "-t", "board", "-i", str(card))
    return argv if chip is None else (*argv, "-c", str(chip))


def spod_info(tool: str, card: int, chip: int) -> tuple[str, ...]:
    """``npu-smi info -t spod-info -i CARD -c CHIP``: A3 SDID / Super Pod ID / Server Index."""
    return (tool, "info", "-t", "spod-info", "-i", str(card), "-c", str(chip))
