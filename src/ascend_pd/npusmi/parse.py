"""Pure parsers for ``npu-smi info`` output (A2 910B and A3 910_93), each keeping ``raw``.

Tables are split on ``|`` and whitespace, never on fixed columns (98- and 99-column builds
exist); ``-l``/``-t`` blocks are label-anchored ``KEY : VALUE`` lines; ``-m`` rows are split
on runs of 2+ spaces (``Ascend 910B4`` contains one). npu-smi prints its errors on stdout;
known ones raise :class:`NpuSmiToolError`, unknown text raises ``ParseError``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Final, Literal

from ascend_pd.errors import ParseError, RunnerError

Soc = Literal["a2", "a3"]

_ERRORS: Final[tuple[str, ...]] = (
    "Invalid card id.", "Invalid chip id.", "This command must input card id.",
    "Failed to query", "Error parameter in querying",
)


class NpuSmiToolError(RunnerError):
    """npu-smi refused the query (bad card / chip id, DCMI failure)."""


def _lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in text.replace("\r", "").split("\n") if ln.strip()]


def _check(stdout: str, exit_code: int, what: str) -> None:
    for line in _lines(stdout):
        if any(line.strip().startswith(msg) for msg in _ERRORS):
            raise NpuSmiToolError(f"npu-smi {what}: {line.strip()} (exit {exit_code})",
                                  hint="check the card/chip ids against `npu-smi info -m`")
    if exit_code and not _lines(stdout):
        raise NpuSmiToolError(f"npu-smi {what} exited {exit_code} without output")


class _Record:
    def to_dict(self) -> dict[str, object]:
        return asdict(self)  # type: ignore[call-overload,no-any-return]


@dataclass(frozen=True)
class InfoChip(_Record):
    """One device of the ``npu-smi info`` table (a card row plus its chip row)."""

    card: int
    name: str
    health: str
    chip: int
    #: A3 only: the physical id printed next to the chip index
    phy_id: int | None
    bus_id: str
    power_w: float | None
    temp_c: int | None
    aicore_pct: int | None
    hbm_used_mb: int
    hbm_total_mb: int


@dataclass(frozen=True)
class NpuSmiInfo(_Record):
    """``npu-smi info``: version, layout (a2/a3), devices and running processes."""

    version: str | None
    soc: Soc
    chips: tuple[InfoChip, ...]
    #: (card, chip, pid, process name, memory MB)
    processes: tuple[tuple[int, int, int, str, int], ...]
    raw: str


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _num(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None  # die 1 of a 910_93 prints "-" for power


_PAIR_RE = re.compile(r"(\d+)\s*/\s*(\d+)")


def parse_info(stdout: str, stderr: str = "", exit_code: int = 0) -> NpuSmiInfo:
    """Parse the ``npu-smi info`` table (device rows and the process section)."""
    _check(stdout, exit_code, "info")
    lines = _lines(stdout)
    version = None
    soc: Soc | None = None
    chips: list[InfoChip] = []
    procs: list[tuple[int, int, int, str, int]] = []
    in_procs = False
    card_row: tuple[str, list[str]] | None = None
    for line in lines:
        if not line.startswith("|"):
            if not line.startswith("+"):
                raise ParseError(f"unexpected line in `npu-smi info`: {line!r}", line=line)
            continue
        cells = _cells(line)
        first = cells[0]
        if m := re.match(r"^npu-smi\s+(\S+)", first):
            version = m.group(1)
        elif first.startswith("NPU") and "Process id" in line:
            in_procs = True
        elif first.startswith("NPU"):
            continue
        elif first.startswith("Chip"):
            soc = "a3" if "Phy-ID" in first else "a2"
        elif in_procs:
            if len(cells) >= 4 and re.match(r"^\d+\s+\d+$", first):
                card, chip = (int(x) for x in first.split())
                procs.append((card, chip, int(cells[1]), cells[2], int(cells[3])))
            elif not first.startswith("No running processes"):
                raise ParseError(f"unexpected process row in `npu-smi info`: {line!r}",
                                 line=line)
        elif card_row is None and (m := re.match(r"^(\d+)\s+(\S+)$", first)) and len(cells) >= 3:
            card_row = (line, cells)
        elif card_row is not None and (m := re.match(r"^(\d+)(?:\s+(\d+))?$", first)):
            _, top = card_row
            card_s, name = top[0].split()
            metrics = top[2].split()
            hbm = _PAIR_RE.findall(cells[2])
            if len(metrics) < 2 or len(hbm) < 2 or len(cells) < 3:
                raise ParseError(f"unrecognised device rows in `npu-smi info`: {line!r}",
                                 line=line)
            temp = _num(metrics[1])
            aicore = _num(cells[2].split()[0])
            chips.append(InfoChip(
                card=int(card_s), name=name, health=top[1], chip=int(m.group(1)),
                phy_id=None if m.group(2) is None else int(m.group(2)), bus_id=cells[1],
                power_w=_num(metrics[0]), temp_c=None if temp is None else int(temp),
                aicore_pct=None if aicore is None else int(aicore),
                hbm_used_mb=int(hbm[-1][0]), hbm_total_mb=int(hbm[-1][1]),
            ))
            card_row = None
        else:
            raise ParseError(f"unexpected row in `npu-smi info`: {line!r}", line=line)
    if soc is None:
        raise ParseError("`npu-smi info` has no `Chip` header row",
                         line=lines[0] if lines else "")
    return NpuSmiInfo(version, soc, tuple(chips), tuple(procs), stdout)


def _kv(stdout: str) -> list[tuple[str, str]]:
    """``KEY : VALUE`` pairs, also several per line in the ``| K : V | K : V |`` style."""
    pairs: list[tuple[str, str]] = []
    for line in _lines(stdout):
        for part in line.split("|"):
            if ":" in part:
                key, value = part.split(":", 1)
                if key.strip():
                    pairs.append((key.strip(), value.strip()))
    return pairs


@dataclass(frozen=True)
class NpuList(_Record):
    """``npu-smi info -l``: ``cards`` holds (NPU ID, Chip Count) per card."""

    total_count: int
    cards: tuple[tuple[int, int], ...]
    raw: str


def parse_list(stdout: str, stderr: str = "", exit_code: int = 0) -> NpuList:
    """Parse ``npu-smi info -l``."""
    _check(stdout, exit_code, "info -l")
    total: int | None = None
    cards: list[tuple[int, int]] = []
    npu: int | None = None
    for key, value in _kv(stdout):
        if key in ("Total Count", "NPU ID", "Chip Count") and not value.isdigit():
            raise ParseError(f"`npu-smi info -l`: {key} is not a number: {value!r}",
                             line=f"{key} : {value}")
        if key == "Total Count":
            total = int(value)
        elif key == "NPU ID":
            npu = int(value)
        elif key == "Chip Count" and npu is not None:
            cards.append((npu, int(value)))
            npu = None
    if total is None:
        raise ParseError("`npu-smi info -l` has no `Total Count` line",
                         line=next(iter(_lines(stdout)), ""))
    return NpuList(total, tuple(cards), stdout)


@dataclass(frozen=True)
class ChipMapping(_Record):
    """One ``npu-smi info -m`` row. ``phy_id`` is what ``hccn_tool -i`` takes."""

    card: int
    chip: int
    logic_id: int | None
    phy_id: int | None
    name: str

    @property
    def is_mcu(self) -> bool:
        return self.name == "Mcu" or self.logic_id is None


@dataclass(frozen=True)
class NpuMapping(_Record):
    """``npu-smi info -m``; ``devices`` are the NPU chips (MCU rows dropped), by phy id."""

    soc: Soc
    rows: tuple[ChipMapping, ...]
    raw: str

    @property
    def devices(self) -> tuple[ChipMapping, ...]:
        return tuple(sorted((r for r in self.rows if not r.is_mcu),
                            key=lambda r: r.phy_id if r.phy_id is not None else -1))

    @property
    def phy_ids(self) -> tuple[int, ...]:
        return tuple(r.phy_id for r in self.devices if r.phy_id is not None)


def _opt_int(token: str) -> int | None:
    return int(token) if token.isdigit() else None


def parse_mapping(stdout: str, stderr: str = "", exit_code: int = 0) -> NpuMapping:
    """Parse ``npu-smi info -m``.

    On A3 the ``Chip Phy-ID`` column is the hccn_tool id. On A2 (no such column, one chip
    per card) the physical id is the NPU ID, which also covers non-contiguous NPU IDs.
    Duplicate phy ids or (card, chip) pairs are a ``ParseError``.
    """
    _check(stdout, exit_code, "info -m")
    lines = _lines(stdout)
    header = next((ln for ln in lines if "NPU ID" in ln and "Chip Name" in ln), None)
    if header is None:
        raise ParseError("`npu-smi info -m` has no header row", line=lines[0] if lines else "")
    soc: Soc = "a3" if "Chip Phy-ID" in header else "a2"
    rows: list[ChipMapping] = []
    for line in lines:
        if line is header:
            continue
        fields = re.split(r"\s{2,}", line.strip())
        want = 5 if soc == "a3" else 4
        if len(fields) != want or not fields[0].isdigit() or not fields[1].isdigit():
            raise ParseError(f"unexpected row in `npu-smi info -m`: {line!r}", line=line)
        card, chip, logic = int(fields[0]), int(fields[1]), _opt_int(fields[2])
        if soc == "a3":
            phy = _opt_int(fields[3])
        else:
            phy = card if logic is not None and fields[3] != "Mcu" else None
        rows.append(ChipMapping(card, chip, logic, phy, fields[-1]))
    mapping = NpuMapping(soc, tuple(rows), stdout)
    devices = mapping.devices
    if len({d.phy_id for d in devices}) != len(devices):
        raise ParseError("`npu-smi info -m` repeats a physical id", line=header)
    if len({(r.card, r.chip) for r in rows}) != len(rows):
        raise ParseError("`npu-smi info -m` repeats a (NPU ID, Chip ID) pair", line=header)
    return mapping


@dataclass(frozen=True)
class BoardInfo(_Record):
    """``npu-smi info -t board``: ordered ``(key, value)`` fields."""

    fields: tuple[tuple[str, str], ...]
    raw: str

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.fields if k == key), None)

    @property
    def soc_name(self) -> str | None:
        """A2: ``{Chip Type}{Chip Name}`` (Ascend910B4); A3: ``{Chip Name}_{NPU Name}``."""
        chip_name, npu_name, chip_type = (self.get("Chip Name"), self.get("NPU Name"),
                                          self.get("Chip Type"))
        if chip_name and npu_name:
            return f"{chip_name}_{npu_name}"
        if chip_name and chip_type:
            return f"{chip_type}{chip_name}"
        return None


def parse_board(stdout: str, stderr: str = "", exit_code: int = 0) -> BoardInfo:
    """Parse ``npu-smi info -t board -i N [-c C]``."""
    _check(stdout, exit_code, "info -t board")
    fields = tuple(_kv(stdout))
    if not fields:
        raise ParseError("`npu-smi info -t board` printed no `KEY : VALUE` lines",
                         line=next(iter(_lines(stdout)), ""))
    return BoardInfo(fields, stdout)


@dataclass(frozen=True)
class SpodInfo(_Record):
    """``-t spod-info``; ``supported`` is False on A2 (which still exits 0). 0 is valid."""

    supported: bool
    sdid: int | None
    super_pod_size: int | None
    super_pod_id: int | None
    server_index: int | None
    raw: str


def parse_spod(stdout: str, stderr: str = "", exit_code: int = 0) -> SpodInfo:
    """Parse ``npu-smi info -t spod-info -i CARD -c CHIP`` (padded, bare or table style)."""
    if "does not support querying spod-info" in stdout:
        return SpodInfo(False, None, None, None, None, stdout)
    _check(stdout, exit_code, "info -t spod-info")
    values: dict[str, int] = {}
    for key, value in _kv(stdout):
        if key in ("SDID", "Super Pod Size", "Super Pod ID", "Server Index"):
            if not value.isdigit():
                raise ParseError(f"spod-info {key} is not a number: {value!r}",
                                 line=f"{key} : {value}")
            values.setdefault(key, int(value))
    if "SDID" not in values and "Super Pod ID" not in values:
        raise ParseError("spod-info has neither SDID nor Super Pod ID",
                         line=next(iter(_lines(stdout)), ""))
    return SpodInfo(True, values.get("SDID"), values.get("Super Pod Size"),
                    values.get("Super Pod ID"), values.get("Server Index"), stdout)
