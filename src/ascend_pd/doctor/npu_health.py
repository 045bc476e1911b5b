"""Per-device ``Health`` from the ``npu-smi info`` table (pure; A2 and A3 layouts).

Interim parser: the shared npu-smi parser (``ascend_pd.npusmi``) replaces it when it
lands; :func:`device_health` is the only caller-facing function, used in one place
(``doctor.checks.check_npu_health``).
"""

from __future__ import annotations

import re
from typing import Final

from ascend_pd.errors import ParseError

#: Health values npu-smi prints (npu_common.c); anything else is reported as is.
HEALTH_VALUES: Final[tuple[str, ...]] = ("OK", "Warning", "Alarm", "Critical", "UNKNOWN")

_CARD_ROW = re.compile(r"^(\d+)\s+\S")
_CHIP_ROW = re.compile(r"^(\d+)(?:\s+(\d+))?$")


def device_health(text: str) -> dict[int, str]:
    """Map device id -> Health for every device in ``npu-smi info``.

    On A2 the device id is the NPU (card) number; on A3 (``Chip  Phy-ID`` header) it is
    the chip row's Phy-ID. Rows are split on ``|``, never on columns (98/99-column
    variants exist). The process table after the device table is ignored.

    Raises:
        ParseError: no device row was found.
    """
    health: dict[int, str] = {}
    pending: tuple[int, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if "Process id" in line:
            break
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 2:
            continue
        if pending is None:
            card = _CARD_ROW.match(cells[0])
            if card:
                pending = (int(card.group(1)), cells[1].split()[0] if cells[1] else "")
            continue
        chip = _CHIP_ROW.match(cells[0])
        if chip is None:
            raise ParseError("npu-smi info: expected a chip row after a card row", line=raw)
        npu, value = pending
        device = int(chip.group(2)) if chip.group(2) is not None else npu
        health[device] = value
        pending = None
    if not health:
        first = text.strip().splitlines()[0] if text.strip() else "<empty output>"
        raise ParseError("npu-smi info: no device rows found", line=first)
    return health
