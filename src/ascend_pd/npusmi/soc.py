"""SoC detection (A2 910B vs A3 910_93) and the A3 SDID bit layout.

SDID layout (hiascend A3 DCMI API ``dcmia3_164``)::

    bits 22-31 server_index (0-47) | bits 18-21 card (0-7) | bits 16-17 die (0-1)
    bits 0-15  device id = 2 * card + die (the physical id)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ascend_pd.errors import ParseError
from ascend_pd.npusmi.parse import NpuList, NpuMapping, NpuSmiInfo, Soc, SpodInfo

MAX_SERVER_INDEX = 47


@dataclass(frozen=True)
class Sdid:
    """A decoded SDID."""

    server_index: int
    card: int
    die: int
    device_id: int

    @property
    def consistent(self) -> bool:
        """True when the device id field agrees with card and die (2 * card + die)."""
        return self.device_id == 2 * self.card + self.die

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "consistent": self.consistent}


def sdid_encode(server_index: int, card: int, die: int) -> int:
    """``(server_index << 22) | (card << 18) | (die << 16) | (2 * card + die)``.

    Raises:
        ValueError: a field is outside its range (server 0-47, card 0-7, die 0-1).
    """
    if not 0 <= server_index <= MAX_SERVER_INDEX:
        raise ValueError(f"server_index {server_index} is outside 0..{MAX_SERVER_INDEX}")
    if not 0 <= card <= 7:
        raise ValueError(f"card {card} is outside 0..7")
    if die not in (0, 1):
        raise ValueError(f"die {die} is not 0 or 1")
    return (server_index << 22) | (card << 18) | (die << 16) | (2 * card + die)


def sdid_decode(sdid: int) -> Sdid:
    """Split an SDID into its fields (no range check beyond the bit widths)."""
    if sdid < 0 or sdid >= 1 << 32:
        raise ValueError(f"SDID {sdid} is not a 32-bit unsigned value")
    return Sdid(sdid >> 22, (sdid >> 18) & 0xF, (sdid >> 16) & 0x3, sdid & 0xFFFF)


def detect_soc(
    *,
    info: NpuSmiInfo | None = None,
    mapping: NpuMapping | None = None,
    listing: NpuList | None = None,
    spod: SpodInfo | None = None,
) -> Soc:
    """Tell A2 from A3 from whichever outputs are available, strongest signal first.

    ``info`` (the ``Phy-ID`` header) and ``mapping`` (the ``Chip Phy-ID`` column) decide
    on their own; then spod-info (A2 does not support it); then ``-l`` Chip Count (2 = A3).

    Raises:
        ParseError: nothing was given, or the signals disagree.
    """
    votes: list[tuple[str, Soc]] = []
    if info is not None:
        votes.append(("npu-smi info", info.soc))
    if mapping is not None:
        votes.append(("npu-smi info -m", mapping.soc))
    if spod is not None:
        votes.append(("spod-info", "a3" if spod.supported else "a2"))
    if listing is not None and listing.cards:
        votes.append(("npu-smi info -l", "a3" if max(c for _, c in listing.cards) >= 2 else "a2"))
    if not votes:
        raise ParseError("cannot tell A2 from A3: no npu-smi output given")
    if len({soc for _, soc in votes}) > 1:
        detail = ", ".join(f"{src} says {soc}" for src, soc in votes)
        raise ParseError(f"npu-smi outputs disagree on the SoC: {detail}", line=detail)
    return votes[0][1]
