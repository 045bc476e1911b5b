"""THE printer of findings (:class:`ascend_pd.findings.Finding`) for people: tables and text.

Every command that checks something prints its findings here; what differs between commands
is data -- a :class:`Layout` (one line or one block per finding, which columns a grid of
every result has, the words for each severity) and the head/tail lines the command's report
computes -- never a code path. The JSON form is ``Finding.to_dict`` inside the envelope of
``cli.output``. Pure text in, text out: library reports call it for ``render()`` and for the
one-line problems of typed errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from ascend_pd.findings import Finding

#: how a block names a severity (check-links and doctor: ``node-d device 3 tls: FAIL: ...``)
LABELS: Final[Mapping[str, str]] = {"error": "FAIL", "warning": "WARN", "info": "INFO",
                                    "pass": "PASS"}
#: grid column -> (header, Finding attribute)
COLUMNS: Final[Mapping[str, tuple[str, str]]] = {
    "host": ("HOST", "host"), "check": ("CHECK", "check"), "status": ("STATUS", "severity"),
    "observed": ("OBSERVED", "message"), "key": ("KEY", "key"), "device": ("DEVICE", "device"),
}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table under a dashed rule (no colour: it must survive pipes and
    logs; runs of spaces separate columns)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def where_text(f: Finding) -> str:
    """``prefill[0].devices (line 12)``, ``node-d device 3 -> node-p/1 (10.0.0.1)``,
    ``decode-0@node-d:22``; ``cluster`` when the finding is about no one place."""
    parts: list[str] = []
    if f.key is not None:
        parts.append(f.key + (f" (line {f.line})" if f.line and f.file is None else ""))
    if f.file is not None:
        parts.append(f.file + (f":{f.line}" if f.line else ""))
    if f.host is not None:
        host = f.host + ("" if f.device is None else f" device {f.device}")
        parts.append(host + (f" -> {f.peer.label()}" if f.peer is not None else ""))
    elif f.device is not None:
        parts.append(f"device {f.device}")
    if f.instance is not None and f.file is None:
        parts.append(f.instance)
    if not parts and f.line:
        parts.append(f"line {f.line}")
    return " ".join(parts) or "cluster"


def finding_line(f: Finding, *, severity: bool = True) -> str:
    """One line: ``error: connector.type (line 7): <message> — <fix>`` (``severity=False``:
    without the leading word, for the problem lists of errors, which are all errors)."""
    text = f"{where_text(f)}: {f.message}" + (f" — {f.fix}" if f.fix else "")
    return f"{f.severity}: {text}" if severity else text


def finding_block(f: Finding, labels: Mapping[str, str] = LABELS) -> str:
    """A head line (where, check, label, message) and the indented details that are set."""
    lines = [f"{where_text(f)} {f.check}: {labels.get(f.severity, f.severity)}: {f.message}"]
    lines += [f"    | {e}" for e in f.evidence]
    for label, value in (("expected", f.expected), ("cause", f.cause), ("fix", f.fix),
                         ("check", f.verify)):
        if value:
            lines.append(f"    {label}: {value}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Layout:
    """How a command shows its findings (data only)."""

    #: one ``finding_line`` or one ``finding_block`` per shown finding
    style: Literal["line", "block"] = "block"
    #: columns (keys of :data:`COLUMNS`) of a table listing every finding; () = no table
    grid: tuple[str, ...] = ()
    #: severity -> word, in blocks
    labels: Mapping[str, str] = field(default_factory=lambda: dict(LABELS))
    #: severity -> word, in the grid's status column
    grid_labels: Mapping[str, str] = field(default_factory=dict)
    #: severities that get a line or block of their own
    show: tuple[str, ...] = ("error", "warning", "info")
    #: a blank line between blocks (and before the first)
    spaced: bool = False


def render_findings(findings: Sequence[Finding], layout: Layout, *,
                    head: Sequence[str] = (), tail: Sequence[str] = ()) -> str:
    """``head`` lines, the grid, one line/block per shown finding, then ``tail`` lines."""
    out = list(head)
    if layout.grid and findings:
        headers = [COLUMNS[c][0] for c in layout.grid]
        rows = [[_cell(f, c, layout) for c in layout.grid] for f in findings]
        out.append(table(headers, rows))
    for f in findings:
        if f.severity not in layout.show:
            continue
        if layout.spaced:
            out.append("")
        out.append(finding_line(f) if layout.style == "line"
                   else finding_block(f, layout.labels))
    if layout.spaced and tail:
        out.append("")
    out += tail
    return "\n".join(out)


def _cell(f: Finding, column: str, layout: Layout) -> str:
    value = getattr(f, COLUMNS[column][1])
    if column == "status":
        return layout.grid_labels.get(str(value), str(value))
    return "" if value is None else str(value)
