"""Per-device ``Health`` from ``npu-smi info``, keyed by the physical device id."""

from __future__ import annotations

from typing import Final

from ascend_pd.npusmi.parse import parse_info

#: Health values npu-smi prints; anything else is reported as is.
HEALTH_VALUES: Final[tuple[str, ...]] = ("OK", "Warning", "Alarm", "Critical", "UNKNOWN")


def device_health(text: str) -> dict[int, str]:
    """Map device id -> Health: the chip's Phy-ID on A3, the NPU (card) id on A2.

    Raises:
        ParseError: the table is not recognised.
    """
    info = parse_info(text)
    return {chip.phy_id if chip.phy_id is not None else chip.card: chip.health
            for chip in info.chips}
