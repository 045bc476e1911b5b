"""Pure parsers for hccn_tool output (A2/A3), each returning a frozen record that keeps ``raw``.

Every parser takes ``(stdout, stderr="", exit_code=0)``. Answers the reference documents as
"not configured" (no IP, no gateway, no certificate, netdetect 0.0.0.0) are data, not errors.
Other failures raise :class:`~ascend_pd.hccn.failures.HccnToolError` with the classified
failure; output that matches no known format raises ``ParseError`` quoting the line.
Parsing is label-anchored and tolerates tab/space padding, ``\\r`` and blank lines.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Final, Literal

from ascend_pd.errors import ParseError
from ascend_pd.hccn.failures import HccnToolError, classify

LinkState = Literal["UP", "DOWN"]

#: net_health strings by DCMI code; "Socket failed" is the older firmware spelling of 1.
NET_HEALTH_STATES: Final[dict[str, int]] = {
    "Success": 0, "Socket fail": 1, "Receive timeout": 2, "Unreachable": 3,
    "Time exceeded": 4, "Fault": 5, "Init": 6, "Thread error": 7, "Detect ip set": 8,
    "Unknown": 9,
}


def _lines(text: str) -> list[str]:
    """Non-blank lines, right-stripped of spaces, tabs and ``\\r``."""
    return [ln.rstrip() for ln in text.replace("\r", "").split("\n") if ln.strip()]


def _fail(stdout: str, stderr: str, exit_code: int) -> HccnToolError:
    return HccnToolError(classify(stdout, stderr, exit_code))


def _first_line(stdout: str) -> str:
    lines = _lines(stdout)
    return lines[0] if lines else ""


class _Record:
    def to_dict(self) -> dict[str, object]:
        return asdict(self)  # type: ignore[call-overload,no-any-return]


@dataclass(frozen=True)
class NpuIp(_Record):
    """``-ip -g``. ``ipaddr``/``netmask`` are None when no IP is configured (exit 13/empty)."""

    ipaddr: str | None
    netmask: str | None
    raw: str
    #: every (ipaddr, netmask) pair; bond products print more than one
    pairs: tuple[tuple[str, str | None], ...] = ()

    @property
    def configured(self) -> bool:
        return self.ipaddr is not None


_IP_RE = re.compile(r"^\s*ipaddr\s*:\s*(\S+)\s*$")
_MASK_RE = re.compile(r"^\s*netmask\s*:\s*(\S+)\s*$")


def parse_ip(stdout: str, stderr: str = "", exit_code: int = 0) -> NpuIp:
    """Parse ``-ip -g``; exit 13 or empty stdout means "not configured"."""
    failure = classify(stdout, stderr, exit_code) if exit_code else None
    if failure is not None and failure.kind != "no_ip":
        raise HccnToolError(failure)
    if failure is not None or not _lines(stdout):
        return NpuIp(None, None, stdout)
    pairs: list[tuple[str, str | None]] = []
    for line in _lines(stdout):
        if m := _IP_RE.match(line):
            pairs.append((m.group(1), None))
        elif (m := _MASK_RE.match(line)) and pairs and pairs[-1][1] is None:
            pairs[-1] = (pairs[-1][0], m.group(1))
        else:
            raise ParseError(f"unexpected line in `hccn_tool -ip -g` output: {line!r}", line=line)
    return NpuIp(pairs[0][0], pairs[0][1], stdout, tuple(pairs))


@dataclass(frozen=True)
class Vnic(_Record):
    """``-vnic -g`` (A3): the HCCS vNIC address used as ranktable ``device_ip``."""

    link: LinkState | None
    ipaddr: str | None
    netmask: str | None
    raw: str


_VNIC_RE = re.compile(r"^\s*vnic (link status|ipaddr|netmask)\s*:\s*(\S+)\s*$")


def parse_vnic(stdout: str, stderr: str = "", exit_code: int = 0) -> Vnic:
    """Parse ``-vnic -g``; any failure (e.g. no vNIC on this board) raises HccnToolError."""
    if exit_code:
        raise _fail(stdout, stderr, exit_code)
    found: dict[str, str] = {}
    for line in _lines(stdout):
        m = _VNIC_RE.match(line)
        if m is None:
            raise ParseError(f"unexpected line in `hccn_tool -vnic -g` output: {line!r}",
                             line=line)
        found.setdefault(m.group(1), m.group(2))
    link = found.get("link status")
    if link not in (None, "UP", "DOWN"):
        raise ParseError(f"unknown vnic link status {link!r}", line=_first_line(stdout))
    if not found:
        raise ParseError("`hccn_tool -vnic -g` printed nothing", line="")
    return Vnic(link, found.get("ipaddr"), found.get("netmask"), stdout)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Link(_Record):
    """``-link -g``: DOWN is data, the command still exits 0."""

    status: LinkState
    raw: str

    @property
    def up(self) -> bool:
        return self.status == "UP"


_LINK_RE = re.compile(r"^\s*link status\s*:\s*(UP|DOWN)\s*$")


def parse_link(stdout: str, stderr: str = "", exit_code: int = 0) -> Link:
    """Parse ``-link -g``. A ``vnic link status`` line is rejected, never mistaken for it."""
    if exit_code:
        raise _fail(stdout, stderr, exit_code)
    for line in _lines(stdout):
        if m := _LINK_RE.match(line):
            return Link(m.group(1), stdout)  # type: ignore[arg-type]
    line = _first_line(stdout)
    raise ParseError(f"no `link status: UP|DOWN` line in `-link -g` output: {line!r}", line=line)


Severity = Literal["ok", "warning", "fault"]


@dataclass(frozen=True)
class NetHealth(_Record):
    """``-net_health -g``. ``status`` is canonical (``Socket failed`` -> ``Socket fail``)."""

    status: str
    code: int
    raw: str

    @property
    def healthy(self) -> bool:
        return self.status == "Success"

    @property
    def severity(self) -> Severity:
        # Success is healthy; Init (probe starting) is a warning; every other state a fault.
        return "ok" if self.code == 0 else "warning" if self.code == 6 else "fault"


_HEALTH_RE = re.compile(r"^\s*net health status\s*:\s*(.+?)\s*$")


def parse_net_health(stdout: str, stderr: str = "", exit_code: int = 0) -> NetHealth:
    """Parse ``-net_health -g`` (every documented state; both ``Socket fail(ed)``)."""
    if exit_code:
        raise _fail(stdout, stderr, exit_code)
    for line in _lines(stdout):
        if m := _HEALTH_RE.match(line):
            status = "Socket fail" if m.group(1) == "Socket failed" else m.group(1)
            if status not in NET_HEALTH_STATES:
                raise ParseError(f"unknown net health status {m.group(1)!r}", line=line)
            return NetHealth(status, NET_HEALTH_STATES[status], stdout)
    line = _first_line(stdout)
    raise ParseError(f"no `net health status:` line in output: {line!r}", line=line)


@dataclass(frozen=True)
class NetDetect(_Record):
    """``-netdetect -g``; ``address`` is None when unset (``0.0.0.0``)."""

    address: str | None
    raw: str


_NETDETECT_RE = re.compile(r"^\s*netdetect addr(?:ess)?\s*:\s*(\S+)\s*$")


def parse_netdetect(stdout: str, stderr: str = "", exit_code: int = 0) -> NetDetect:
    """Parse ``-netdetect -g`` (``netdetect addr:`` and the older ``netdetect address:``)."""
    if exit_code:
        raise _fail(stdout, stderr, exit_code)
    for line in _lines(stdout):
        if m := _NETDETECT_RE.match(line):
            value = m.group(1)
            return NetDetect(None if value == "0.0.0.0" else value, stdout)
    line = _first_line(stdout)
    raise ParseError(f"no `netdetect addr:` line in output: {line!r}", line=line)


@dataclass(frozen=True)
class Gateway(_Record):
    """``-gateway -g``; ``gateway`` is None when none is configured (exit 2)."""

    gateway: str | None
    iface: str | None
    raw: str


_GATEWAY_RE = re.compile(r"^\s*default gateway\s*:\s*([\d.]+)\s*,\s*Iface\s*:\s*(\S+)\s*$")


def parse_gateway(stdout: str, stderr: str = "", exit_code: int = 0) -> Gateway:
    """Parse ``-gateway -g``; exit 2 with ``no gateway was preset`` means none."""
    if exit_code:
        failure = classify(stdout, stderr, exit_code)
        if failure.kind == "no_gateway" or (failure.kind == "unknown" and exit_code == 2):
            return Gateway(None, None, stdout)
        raise HccnToolError(failure)
    for line in _lines(stdout):
        if m := _GATEWAY_RE.match(line):
            return Gateway(m.group(1), m.group(2), stdout)
    line = _first_line(stdout)
    raise ParseError(f"no `default gateway:` line in output: {line!r}", line=line)


@dataclass(frozen=True)
class TlsDevice(_Record):
    """One ``dev_id:N, tls switch[x]...`` line; ``preconfigured`` is None on older firmware."""

    dev_id: int
    switch: int
    preconfigured: int | None


@dataclass(frozen=True)
class Tls(_Record):
    """``-tls -g``. No certificate (exit 14, or no ``tls switch[`` line) means TLS is off."""

    devices: tuple[TlsDevice, ...]
    has_certificate: bool
    raw: str

    @property
    def enabled(self) -> bool:
        return any(d.switch == 1 for d in self.devices)

    @property
    def switch(self) -> int:
        """The switch of the (first) device: 0 when there is no certificate."""
        return self.devices[0].switch if self.devices else 0


_TLS_RE = re.compile(
    r"^\s*dev_id\s*:\s*(\d+)\s*,\s*tls switch\[(\d)\]"
    r"(?:.*?tls preconfigured\[(\d)\])?"
)


def parse_tls(stdout: str, stderr: str = "", exit_code: int = 0) -> Tls:
    """Parse ``-tls -g``: per-device switch and optional preset flag; cert blocks skipped."""
    if exit_code:
        failure = classify(stdout, stderr, exit_code)
        if failure.kind == "no_certificate":
            return Tls((), False, stdout)
        raise HccnToolError(failure)
    devices: list[TlsDevice] = []
    for line in _lines(stdout):
        if m := _TLS_RE.match(line):
            pre = m.group(3)
            devices.append(TlsDevice(int(m.group(1)), int(m.group(2)),
                                     None if pre is None else int(pre)))
    # Certificate blocks, expiry lines and anything else are informational: skipped.
    return Tls(tuple(devices), bool(devices), stdout)


@dataclass(frozen=True)
class Lldp(_Record):
    """``-lldp -g``: the switch port (Port ID TLV Ifname) and switch name, None when absent."""

    port_id: str | None
    system_name: str | None
    raw: str

    @property
    def has_neighbour(self) -> bool:
        return self.port_id is not None


def parse_lldp(stdout: str, stderr: str = "", exit_code: int = 0) -> Lldp:
    """Parse ``-lldp -g`` (lldptool layout: TLV title line, TAB-indented value below)."""
    if exit_code:
        raise _fail(stdout, stderr, exit_code)
    lines = _lines(stdout)
    port: str | None = None
    name: str | None = None
    for i, line in enumerate(lines):
        title = line.strip()
        if title == "Port ID TLV":
            for value in lines[i + 1:i + 3]:
                if "Ifname:" in value:
                    # Interface names contain ':' (400GE1/1/20:2): split once only.
                    port = value.split("Ifname:", 1)[1].strip() or None
                    break
        elif title == "System Name TLV" and i + 1 < len(lines):
            name = lines[i + 1].strip() or None
    return Lldp(port, name, stdout)
