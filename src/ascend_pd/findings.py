"""THE finding: one result of one check, for every command that checks something.

validate / render / launch (the P/D plan checks and the spec's cross-field rules),
check-links, doctor, gen-ranktable and diagnose all report :class:`Finding`; the one printer
(:mod:`ascend_pd.printer`) turns lists of them into tables, text and JSON.

A finding says how bad it is (``severity``), which check made it (``check``, a stable id),
where (a spec key with its YAML line, a host, a device, an instance, a ping peer or a log
file and line: only the parts that apply), what was seen (``message``), what was expected,
and the fix (the command or edit that fixes it). A diagnosis also carries its ``cause`` and
the ascend-pd command that ``verify``-ies it.

Severities, and how the older per-command words map onto them (docs/json.md):

* ``error``   -- blocks: a P/D error, a check-links *fault*, a doctor *fail*, a ranktable
  problem, a known failure found in a log. Exit 1 (findings) or the command's error code.
* ``warning`` -- printed, does not block: a doctor *warn*, a check-links warning.
* ``info``    -- context only (nothing to fix).
* ``pass``    -- a check that ran and found nothing: only doctor keeps them, because its
  host x check grid shows every check, not only the failing ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

Severity = Literal["error", "warning", "info", "pass"]

#: worst first (the order of `counts`)
SEVERITIES: Final[tuple[Severity, ...]] = ("error", "warning", "info", "pass")

#: the pass / warn / fail words of doctor's checks -> severity
STATUS_SEVERITY: Final[dict[str, Severity]] = {"pass": "pass", "warn": "warning", "fail": "error"}


@dataclass(frozen=True)
class Peer:
    """The other end of a ping."""

    host: str
    device: int
    address: str | None = None

    def label(self) -> str:
        return f"{self.host}/{self.device}" + (f" ({self.address})" if self.address else "")


# Keyword-only: the per-command types it replaced took their fields positionally in
# other orders (``(severity, key, message, hint)``, ``(host, device, check, ...)``); a
# positional call written for one of those must fail, not fill the wrong fields.
@dataclass(frozen=True, kw_only=True)
class Finding:
    """One result of one check. Only the ``where`` fields that apply are set."""

    severity: Severity
    check: str
    message: str
    expected: str = ""
    fix: str = ""
    # -- where --
    #: spec key path (``prefill[0].devices``, ``connector.type``)
    key: str | None = None
    #: 1-based line: of ``key`` in the spec file, or of the matching line in a log ``file``
    line: int | None = None
    #: a file the finding is about (a log for diagnose)
    file: str | None = None
    host: str | None = None
    device: int | None = None
    instance: str | None = None
    peer: Peer | None = None
    #: verbatim lines that show it (the matching log lines of a diagnosis)
    evidence: tuple[str, ...] = ()
    # -- diagnose --
    cause: str = ""
    #: the ascend-pd command that checks for this problem before it happens
    verify: str = ""

    def __eq__(self, other: object) -> bool:
        # By value, whatever built it: the constructors kept for one release are subclasses.
        if not isinstance(other, Finding):
            return NotImplemented
        return _values(self) == _values(other)

    def __hash__(self) -> int:
        return hash(_values(self))

    def where(self) -> dict[str, Any]:
        """The location fields that are set (the ``where`` object of the JSON form)."""
        out: dict[str, Any] = {}
        for name in ("key", "line", "file", "host", "device", "instance"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.peer is not None:
            out["peer"] = {"host": self.peer.host, "device": self.peer.device,
                           "address": self.peer.address}
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, documented in docs/json.md (``#/$defs/finding``)."""
        out: dict[str, Any] = {"severity": self.severity, "check": self.check,
                               "where": self.where(), "message": self.message,
                               "expected": self.expected, "fix": self.fix}
        if self.evidence:
            out["evidence"] = list(self.evidence)
        if self.cause or self.verify:
            out |= {"cause": self.cause, "verify": self.verify}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """Read back :meth:`to_dict` (e.g. the doctor reports of k8s preflight Jobs)."""
        where = dict(data.get("where") or {})
        peer = where.pop("peer", None)
        return cls(severity=data["severity"], check=data["check"], message=data["message"],
                   expected=data.get("expected", ""), fix=data.get("fix", ""),
                   cause=data.get("cause", ""), verify=data.get("verify", ""),
                   evidence=tuple(data.get("evidence", ())),
                   peer=Peer(**peer) if peer else None, **where)


def at_key(severity: Severity, key: str, message: str, hint: str | None = None, *,
           check: str = "") -> Finding:
    """A finding about a spec key (P/D plan checks; ``check`` is filled in by the runner of
    the check list when left empty)."""
    return Finding(severity=severity, check=check, message=message, fix=hint or "", key=key)


def host_check(host: str, check: str, status: str, observed: str, expected: str = "",
               fix: str = "") -> Finding:
    """A doctor result: ``status`` pass / warn / fail (the probe checks' own words)."""
    return Finding(severity=STATUS_SEVERITY[status], check=check, message=observed,
                   expected=expected, fix=fix, host=host)


def _values(finding: Finding) -> tuple[Any, ...]:
    return tuple(getattr(finding, f.name) for f in fields(Finding))


def evolve(finding: Finding, **changes: Any) -> Finding:
    """A copy with ``changes`` (always of this class, whatever built ``finding``)."""
    values = {f.name: getattr(finding, f.name) for f in fields(Finding)}
    return Finding(**(values | changes))


def check_id(check: Callable[..., object]) -> str:
    """The stable id of a check function: ``check_kv_port_range`` -> ``kv-port-range``."""
    return check.__name__.removeprefix("check_").replace("_", "-")


def tagged(check: str, found: Iterable[Finding]) -> list[Finding]:
    """``found`` with ``check`` as the id of those that name none."""
    return [f if f.check else evolve(f, check=check) for f in found]


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def warnings(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "warning"]


def counts(findings: list[Finding]) -> dict[str, int]:
    """Findings per severity, every severity present (0 when none)."""
    return {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
