"""The result of a network check: findings, skipped pings, the ping plan, and their forms.

``CheckReport.to_dict()`` is the ``data`` of ``ascend-pd check-links --json``; its schema is
documented in docs/check-links.md and versioned by :data:`SCHEMA`. Keep it stable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

SCHEMA: Final[str] = "ascend-pd/check-links/v1"

#: Every check, in report order.
CHECKS: Final[tuple[str, ...]] = (
    "reach", "nic", "device", "hang", "link", "net_health", "netdetect", "gateway", "ip", "vnic",
    "spod", "tls", "lldp", "ping", "tcp",
)
Severity = Literal["fault", "warning"]


@dataclass(frozen=True)
class Peer:
    """The other end of a ping."""

    host: str
    device: int
    address: str | None

    def label(self) -> str:
        return f"{self.host}/{self.device}" + (f" ({self.address})" if self.address else "")


@dataclass(frozen=True)
class Finding:
    """One problem: where, which check, what was seen, what was expected, how to fix it.

    ``device`` is None for host-level findings (``reach``); ``peer`` is set for pings.
    """

    host: str
    device: int | None
    check: str
    severity: Severity
    observed: str
    expected: str
    fix: str
    peer: Peer | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    """A check that was not run because something it needs is already reported."""

    host: str
    device: int | None
    check: str
    reason: str
    peer: Peer | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PingSummary:
    """The ping plan as run: mode, transport, counts, and pairs excluded by design."""

    mode: str
    #: "tcp" on platform cuda (netcheck.tcp: no pings, a TCP matrix)
    transport: Literal["roce", "hccs", "tcp"]
    planned: int = 0
    run: int = 0
    failed: int = 0
    skipped: int = 0
    excluded: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FixOutcome:
    """What ``--fix tls`` did: the target value and each device it changed or could not."""

    target: int
    changed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _table(headers: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
           for row in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def _order(item: Finding | Skipped, hosts: dict[str, int]) -> tuple[Any, ...]:
    peer = item.peer
    return (hosts.get(item.host, len(hosts)), item.host,
            -1 if item.device is None else item.device, CHECKS.index(item.check),
            (peer.host, peer.device) if peer else ("", -1))


@dataclass
class CheckReport:
    """Everything one run found. ``exit_code``: 0 all pass, 1 faults, 3 nothing reachable
    (like every command whose hosts cannot be reached; docs/exit-codes.md)."""

    targets: dict[str, Any]
    findings: list[Finding]
    skipped: list[Skipped]
    pings: PingSummary
    #: check -> number of devices (pairs, for ping; hosts, for reach) it was evaluated on
    evaluated: dict[str, int]
    tls_reference: int | None
    wall_s: float
    #: phase -> host -> commands run (for the critical-path figures of the benchmark)
    commands: dict[str, dict[str, int]]
    #: (host, device) -> TLS switch read (0 = off or no certificate)
    tls_values: dict[tuple[str, int], int] = field(default_factory=dict)
    fix: FixOutcome | None = None
    #: platform cuda: the TCP reachability matrix (``netcheck.tcp.TcpSummary``)
    tcp: Any = None

    def __post_init__(self) -> None:
        order = {h["name"]: i for i, h in enumerate(self.targets.get("hosts", []))}
        self.findings.sort(key=lambda f: _order(f, order))
        self.skipped.sort(key=lambda s: _order(s, order))

    def add(self, check: str, findings: list[Finding], evaluated: int) -> None:
        """Add the findings of a check run outside ``check_network`` (``nic``)."""
        self.findings.extend(findings)
        self.evaluated[check] = self.evaluated.get(check, 0) + evaluated
        self.__post_init__()

    @property
    def faults(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "fault"]

    @property
    def ok(self) -> bool:
        return not self.faults

    @property
    def exit_code(self) -> int:
        hosts = self.targets.get("hosts", [])
        unreachable = {f.host for f in self.findings if f.check == "reach"}
        if hosts and len(unreachable) == len(hosts):
            return 3
        return 0 if self.ok else 1

    def summary(self) -> list[tuple[str, int, int, int, int]]:
        """(check, passed, warnings, faults, skipped) for every check that ran or failed."""
        faults = Counter(f.check for f in self.findings if f.severity == "fault")
        warns = Counter(f.check for f in self.findings if f.severity == "warning")
        skipped = Counter(s.check for s in self.skipped)
        rows = []
        for check in CHECKS:
            total = self.evaluated.get(check, 0)
            bad = faults[check] + warns[check]
            if total or bad or skipped[check]:
                rows.append((check, max(total - bad, 0), warns[check], faults[check],
                             skipped[check]))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "ok": self.ok,
            **self.targets,
            "summary": [dict(zip(("check", "passed", "warnings", "faults", "skipped"), row,
                                 strict=True)) for row in self.summary()],
            "findings": [f.to_dict() for f in self.findings],
            "skipped": [s.to_dict() for s in self.skipped],
            "pings": self.pings.to_dict(),
            "tls": {"reference": self.tls_reference,
                    "enabled": [{"host": h, "device": d}
                                for (h, d), v in sorted(self.tls_values.items()) if v],
                    "devices": len(self.tls_values)},
            "fix": None if self.fix is None else self.fix.to_dict(),
            "timing": {"wall_s": round(self.wall_s, 3), "commands": self.commands},
        } | ({"tcp": self.tcp.to_dict()} if self.tcp is not None else {})

    def human(self) -> str:
        """The summary table, then one block per finding with its fix."""
        hosts = self.targets.get("hosts", [])
        devices = sum(len(h["devices"]) for h in hosts)
        head = (f"{len(hosts)} host(s), {devices} device(s), {self.targets.get('soc')}; "
                f"pings: {self.pings.mode} over {self.pings.transport}, {self.pings.run} run, "
                f"{self.pings.skipped} skipped, {len(self.pings.excluded)} excluded by design")
        if self.tcp is not None:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(self.tcp.counts.items()))
            head = (f"{len(hosts)} host(s), {self.targets.get('platform')}; TCP matrix: "
                    f"{self.tcp.planned} (source, port) pair(s): {counts or 'none'}")
        lines = [head, "",
                 _table(["check", "passed", "warnings", "faults", "skipped"], self.summary())]
        if self.fix is not None:
            lines += ["", f"--fix tls: set enable {self.fix.target} on "
                          f"{len(self.fix.changed)} device(s), {len(self.fix.failed)} failed"]
            lines += [f"  {f['host']} device {f['device']}: {f['error']}" for f in self.fix.failed]
        for item in self.findings:
            where = item.host + ("" if item.device is None else f" device {item.device}")
            if item.peer is not None:
                where += f" -> {item.peer.label()}"
            label = "FAIL" if item.severity == "fault" else "WARN"
            lines += ["", f"{where} {item.check}: {label}: {item.observed}",
                      f"    expected: {item.expected}", f"    fix: {item.fix}"]
        if self.skipped:
            reasons = Counter(s.reason for s in self.skipped)
            lines += ["", f"skipped {len(self.skipped)} check(s):"]
            lines += [f"  {n} x {reason}" for reason, n in sorted(reasons.items())]
        verdict = "all checks passed" if self.ok else f"{len(self.faults)} fault(s)"
        warnings = len(self.findings) - len(self.faults)
        lines += ["", verdict + (f", {warnings} warning(s)" if warnings else "")
                  + f" ({self.wall_s:.1f}s)"]
        return "\n".join(lines)
