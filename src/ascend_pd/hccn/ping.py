"""Parse ``hccn_tool -ping -g`` (RoCE) and ``-hccs_ping -g`` (A3 HCCS) output.

The two differ: RoCE prints ``recv seq=N,time=T ms`` / ``recv time out seq=N`` and
``packet loss``; HCCS prints a result line per packet, then ``recv seq N, time = Tus,
L1 plane check result = 0xX``, blank lines, ``packets loss`` and time statistics.
A ping that lost packets is data (exit 1 after the statistics), not an exception.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Literal

from ascend_pd.errors import ParseError
from ascend_pd.hccn.failures import HccnToolError, classify

PingKind = Literal["roce", "hccs"]


@dataclass(frozen=True)
class PingPacket:
    """One probe. ``time_ms`` is None when it was lost; ``l1_check`` is HCCS only."""

    seq: int
    ok: bool
    time_ms: float | None = None
    l1_check: int | None = None
    #: HCCS per-packet result line, e.g. ``This pkt ping success!``
    status: str | None = None


@dataclass(frozen=True)
class Ping:
    """A ping's statistics and packets; ``healthy`` is the preflight verdict."""

    kind: PingKind
    device: int | None
    target: str | None
    transmitted: int
    received: int
    loss_pct: float
    packets: tuple[PingPacket, ...]
    exit_code: int
    raw: str
    #: HCCS ``max/min/average/TP95 time`` lines, in microseconds
    stats_us: tuple[tuple[str, float], ...] = ()

    @property
    def healthy(self) -> bool:
        # Any loss, any timeout, a non-zero exit or a bad L1 plane check fails the pair.
        return (
            self.exit_code == 0 and self.transmitted > 0 and self.received == self.transmitted
            and self.loss_pct == 0.0 and all(p.ok for p in self.packets)
            and all(not p.l1_check for p in self.packets)
        )

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "healthy": self.healthy}


_HEAD_RE = re.compile(r"^device\s+(\d+)\s+PING\s+(\S+)$")
_STATS_RE = re.compile(
    r"^(\d+)\s+packets transmitted,\s*(\d+)\s+received,\s*([\d.]+)%\s+packets?\s+loss$"
)
_ROCE_OK_RE = re.compile(r"^recv seq=(\d+)\s*,\s*time=([\d.]+)\s*ms$")
# Published docs write `seq=O` for seq 0: accept a letter O as a zero.
_ROCE_LOST_RE = re.compile(r"^recv time out seq=([\dO]+)$")
_HCCS_OK_RE = re.compile(
    r"^recv seq\s+(\d+)\s*,\s*time\s*=\s*([\d.]+)\s*us\s*,\s*"
    r"L1 plane check result\s*=\s*(0x[0-9a-fA-F]+|\d+)$"
)
_HCCS_STATUS_RE = re.compile(r"^This pkt .*[!.]$")
_HCCS_TIME_RE = re.compile(r"^(max|min|average|TP95) time\s+([\d.]+)\s*us$")


def parse_ping(stdout: str, stderr: str = "", exit_code: int = 0) -> Ping:
    """Parse a RoCE or HCCS ping; the kind is recognised from the text.

    Raises:
        HccnToolError: the ping did not run (not supported, link down, busy, bad device).
        ParseError: a line matches neither format.
    """
    device: int | None = None
    target: str | None = None
    stats: tuple[int, int, float] | None = None
    packets: list[PingPacket] = []
    times: list[tuple[str, float]] = []
    pending: str | None = None
    kind: PingKind = "roce"

    def flush_pending() -> None:
        nonlocal pending
        if pending is not None:
            packets.append(PingPacket(len(packets), False, status=pending))
            pending = None

    for raw_line in stdout.replace("\r", "").split("\n"):
        line = raw_line.strip()
        if not line:
            continue
        if m := _HEAD_RE.match(line):
            device, target = int(m.group(1)), m.group(2)
        elif m := _STATS_RE.match(line):
            flush_pending()
            stats = (int(m.group(1)), int(m.group(2)), float(m.group(3)))
            if "packets loss" in line:
                kind = "hccs"
        elif m := _ROCE_OK_RE.match(line):
            packets.append(PingPacket(int(m.group(1)), True, float(m.group(2))))
        elif m := _ROCE_LOST_RE.match(line):
            packets.append(PingPacket(int(m.group(1).replace("O", "0")), False))
        elif _HCCS_STATUS_RE.match(line):
            kind = "hccs"
            flush_pending()
            pending = line
        elif m := _HCCS_OK_RE.match(line):
            kind = "hccs"
            packets.append(PingPacket(int(m.group(1)), pending is None or "success" in pending,
                                      float(m.group(2)) / 1000.0, int(m.group(3), 0), pending))
            pending = None
        elif m := _HCCS_TIME_RE.match(line):
            times.append((m.group(1), float(m.group(2))))
        elif stats is None and exit_code == 0:
            raise ParseError(f"unexpected line in ping output: {line!r}", line=line)
    flush_pending()
    if stats is None:
        if exit_code:
            raise HccnToolError(classify(stdout, stderr, exit_code))
        raise ParseError("ping output has no `packets transmitted` line",
                         line=next((ln for ln in stdout.splitlines() if ln.strip()), ""))
    return Ping(kind, device, target, stats[0], stats[1], stats[2], tuple(packets), exit_code,
                stdout, tuple(times))
