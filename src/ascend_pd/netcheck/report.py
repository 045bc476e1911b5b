"""The result of a network check: findings, skipped pings, the ping plan, and their forms.

The findings are the one finding type (:mod:`ascend_pd.findings`; built here by
:func:`device_finding`), printed by the one printer. ``CheckReport.to_dict()`` is the
``data`` of ``ascend-pd check-links --json``; its schema is documented in docs/json.md
(docs/schemas/check-links.v2.json) and versioned by :data:`SCHEMA`: a shape change bumps it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from ascend_pd import findings as fnd
from ascend_pd.findings import Peer
from ascend_pd.printer import Layout, render_findings, table

#: v2: findings are the one finding type (docs/json.md); v1 had its own finding shape
SCHEMA: Final[str] = "ascend-pd/check-links/v2"

#: a blank line, then a block (``node-d device 3 tls: FAIL: ...``) per fault and warning
LAYOUT: Final[Layout] = Layout(spaced=True)
#: Every check, in report order.
CHECKS: Final[tuple[str, ...]] = (
    "reach", "nic", "device", "hang", "link", "net_health", "netdetect", "gateway", "ip", "vnic",
    "spod", "tls", "lldp", "ping", "tcp",
)
#: the severities of check-links' own words: a *fault* is an error
Severity = Literal["fault", "warning"]


class Finding(fnd.Finding):
    """Kept importable for one release: checks written against the former
    ``netcheck.report.Finding(host, device, check, severity, observed, expected, fix, peer)``
    keep working while other branches move to :func:`device_finding`. It builds the one
    type (``fault`` becomes severity ``error``); new code calls ``device_finding``."""

    def __init__(self, host: str, device: int | None, check: str, severity: Severity,
                 observed: str, expected: str, fix: str, peer: Peer | None = None) -> None:
        super().__init__(severity="error" if severity == "fault" else "warning", check=check,
                         message=observed, expected=expected, fix=fix, host=host,
                         device=device, peer=peer)


def device_finding(host: str, device: int | None, check: str, observed: str, expected: str,
                   fix: str, *, warning: bool = False, peer: Peer | None = None
                   ) -> fnd.Finding:
    """A check-links finding: a fault (error) or, with ``warning``, a warning; ``device``
    None for host-level findings (``reach``, ``nic``), ``peer`` set for pings."""
    return fnd.Finding(severity="warning" if warning else "error", check=check,
                       message=observed, expected=expected, fix=fix, host=host, device=device,
                       peer=peer)


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


def _order(item: fnd.Finding | Skipped, hosts: dict[str, int]) -> tuple[Any, ...]:
    peer, host = item.peer, item.host or ""
    return (hosts.get(host, len(hosts)), host,
            -1 if item.device is None else item.device, CHECKS.index(item.check),
            (peer.host, peer.device) if peer else ("", -1))


@dataclass
class CheckReport:
    """Everything one run found. ``exit_code``: 0 all pass, 1 faults, 3 nothing reachable
    (like every command whose hosts cannot be reached; docs/exit-codes.md)."""

    targets: dict[str, Any]
    findings: list[fnd.Finding]
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

    def add(self, check: str, findings: list[fnd.Finding], evaluated: int) -> None:
        """Add the findings of a check run outside ``check_network`` (``nic``)."""
        self.findings.extend(findings)
        self.evaluated[check] = self.evaluated.get(check, 0) + evaluated
        self.__post_init__()

    @property
    def faults(self) -> list[fnd.Finding]:
        return fnd.errors(self.findings)

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
        faults = Counter(f.check for f in self.findings if f.severity == "error")
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
            "summary": [dict(zip(("check", "passed", "warnings", "errors", "skipped"), row,
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
        line = (f"{len(hosts)} host(s), {devices} device(s), {self.targets.get('soc')}; "
                f"pings: {self.pings.mode} over {self.pings.transport}, {self.pings.run} run, "
                f"{self.pings.skipped} skipped, {len(self.pings.excluded)} excluded by design")
        if self.tcp is not None:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(self.tcp.counts.items()))
            line = (f"{len(hosts)} host(s), {self.targets.get('platform')}; TCP matrix: "
                    f"{self.tcp.planned} (source, port) pair(s): {counts or 'none'}")
        head = [line, "",
                table(["check", "passed", "warnings", "faults", "skipped"], self.summary())]
        if self.fix is not None:
            head += ["", f"--fix tls: set enable {self.fix.target} on "
                         f"{len(self.fix.changed)} device(s), {len(self.fix.failed)} failed"]
            head += [f"  {f['host']} device {f['device']}: {f['error']}" for f in self.fix.failed]
        tail: list[str] = []
        if self.skipped:
            reasons = Counter(s.reason for s in self.skipped)
            tail += [f"skipped {len(self.skipped)} check(s):"]
            tail += [f"  {n} x {reason}" for reason, n in sorted(reasons.items())]
            tail.append("")
        verdict = "all checks passed" if self.ok else f"{len(self.faults)} fault(s)"
        warnings = len(self.findings) - len(self.faults)
        tail.append(verdict + (f", {warnings} warning(s)" if warnings else "")
                    + f" ({self.wall_s:.1f}s)")
        return render_findings(self.findings, LAYOUT, head=head, tail=tail)
