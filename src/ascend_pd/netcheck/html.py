"""One self-contained HTML page for a check-links (or doctor) run: ``--html FILE``.

A 64-host P×D ping matrix or a TLS split over 1,024 devices is read faster as a picture
than as text. The page needs nothing at view time: inline CSS and SVG, no script, no
font, no network. It shows the run's metadata, a host × check grid coloured by result,
a device map per host (worst finding per device), the P×D reachability heatmap (one cell
per prefill/decode device pair) and every finding with its fix command.

Colours are flat and exact (no gradients) so a screenshot can be read back pixel by
pixel: see :data:`COLOURS`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ascend_pd import __version__
from ascend_pd.findings import Finding
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.netcheck.report import CHECKS, CheckReport
from ascend_pd.printer import where_text

if TYPE_CHECKING:
    from ascend_pd.doctor.report import DoctorReport

#: status -> fill colour (flat; the screenshot test reads these exact values back)
COLOURS: Final[dict[str, str]] = {
    "pass": "#2e7d32", "warning": "#f9a825", "fault": "#c62828", "skipped": "#9e9e9e",
    "none": "#e6e6e6",
}
LEGEND: Final[dict[str, str]] = {
    "pass": "passed", "warning": "warning", "fault": "fault", "skipped": "skipped",
    "none": "not run / not in this ping plan",
}
_RANK: Final[dict[str, int]] = {"none": 0, "pass": 1, "skipped": 2, "warning": 3, "fault": 4}
#: device-map cell size (px), fixed so a screenshot can locate device N of a host
DEVICE_CELL: Final[int] = 26
DEVICE_GAP: Final[int] = 4

_CSS: Final[str] = f"""
body {{ font: 14px/1.4 sans-serif; margin: 24px; color: #212121; background: #fff; }}
h1 {{ font-size: 22px; margin: 0 0 8px; }} h2 {{ font-size: 17px; margin: 28px 0 8px; }}
table {{ border-collapse: collapse; }}
.meta td {{ padding: 2px 12px 2px 0; vertical-align: top; }}
.meta td:first-child {{ color: #616161; }}
.grid td, .grid th {{ border: 1px solid #fff; padding: 0; text-align: center; }}
.grid th {{ font-weight: normal; font-size: 12px; padding: 2px 6px; }}
.grid td {{ min-width: 64px; height: 24px; color: #fff; font-size: 12px; }}
.rowhead {{ text-align: left !important; padding-right: 10px !important; white-space: nowrap; }}
.devices {{ border-spacing: 0; }}
.devices td.dev {{ width: {DEVICE_CELL}px; height: {DEVICE_CELL}px; padding: 0;
  border-right: {DEVICE_GAP}px solid #fff; border-bottom: {DEVICE_GAP}px solid #fff;
  color: #fff; font-size: 11px; text-align: center; }}
.devices td.rowhead {{ width: 160px; }}
.swatch {{ display: inline-block; width: 14px; height: 14px; vertical-align: middle;
  margin: 0 4px 0 14px; }}
.findings td, .findings th {{ border-bottom: 1px solid #e0e0e0; padding: 4px 10px 4px 0;
  text-align: left; vertical-align: top; }}
code {{ background: #f5f5f5; padding: 1px 4px; }}
.fault {{ color: {COLOURS["fault"]}; font-weight: bold; }} .warning {{ color: #8d6e00; }}
"""


def _worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default="none")


def _cell(status: str, text: str = "", title: str = "", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (f'<td{klass} style="background:{COLOURS[status]}" '
            f'title="{escape(title)}">{escape(text)}</td>')


def _legend() -> str:
    return "<p>" + "".join(f'<span class="swatch" style="background:{c}"></span>'
                           f"{escape(LEGEND[s])}" for s, c in COLOURS.items()) + "</p>"


def _meta_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">{body}</table>'


def _grid(hosts: Sequence[str], checks: Sequence[str],
          cells: dict[tuple[str, str], tuple[str, str, str]]) -> str:
    """Host × check table; ``cells[(host, check)] = (status, text, tooltip)``."""
    head = "".join(f"<th>{escape(c)}</th>" for c in checks)
    rows = []
    for host in hosts:
        tds = "".join(_cell(*cells.get((host, c), ("none", "", "not run"))) for c in checks)
        rows.append(f'<tr><th class="rowhead">{escape(host)}</th>{tds}</tr>')
    return f'<table class="grid"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def _findings_table(rows: Sequence[tuple[str, str, str, str, str, str]]) -> str:
    """(severity, where, check, observed, expected, fix) rows."""
    if not rows:
        return "<p>No findings.</p>"
    head = "".join(f"<th>{h}</th>" for h in
                   ("", "where", "check", "observed", "expected", "fix"))
    body = "".join(
        f'<tr><td class="{escape(sev)}">{escape(sev.upper())}</td><td>{escape(where)}</td>'
        f"<td>{escape(check)}</td><td>{escape(obs)}</td><td>{escape(exp)}</td>"
        f"<td><code>{escape(fix)}</code></td></tr>"
        for sev, where, check, obs, exp, fix in rows)
    return f'<table class="findings"><tr>{head}</tr>{body}</table>'


def page(title: str, meta: Sequence[tuple[str, str]], sections: Sequence[tuple[str, str]]) -> str:
    """The whole document: title, metadata, then ``(heading, html)`` sections."""
    parts = [f"<h2>{escape(h)}</h2>{body}" for h, body in sections]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1>{_meta_table(meta)}{_legend()}{''.join(parts)}"
            "</body></html>\n")


def run_metadata(command: str, exit_code: int, extra: Sequence[tuple[str, str]] = ()) -> list[
        tuple[str, str]]:
    """The rows every report starts with."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return [("command", command), ("generated", now), ("ascend-pd", __version__),
            *extra, ("exit code", str(exit_code))]


#: severity of the one finding type -> its colour (the worst of a cell wins)
_COLOUR_OF: Final[dict[str, str]] = {"error": "fault", "warning": "warning", "pass": "pass",
                                     "info": "none"}


def _status(f: Finding) -> str:
    return _COLOUR_OF[f.severity]


def _rows(findings: Sequence[Finding]) -> list[tuple[str, str, str, str, str, str]]:
    """The findings table's rows: every finding that is not a pass."""
    return [(_status(f), where_text(f), f.check, f.message, f.expected, f.fix)
            for f in findings if f.severity != "pass"]


def _host_checks(report: CheckReport, hosts: list[str]) -> dict[tuple[str, str], tuple[
        str, str, str]]:
    cells: dict[tuple[str, str], tuple[str, str, str]] = {}
    unreachable = {f.host for f in report.findings if f.check == "reach"}
    for host in hosts:
        for check in CHECKS:
            found = [f for f in report.findings if f.host == host and f.check == check]
            skipped = [s for s in report.skipped if s.host == host and s.check == check]
            if found:
                status = _worst(_status(f) for f in found)
                cells[(host, check)] = (status, str(len(found)),
                                        "; ".join(f"{where_text(f)}: {f.message}"
                                                  for f in found))
            elif skipped or (host in unreachable and report.evaluated.get(check)):
                reason = skipped[0].reason if skipped else f"{host} is unreachable"
                cells[(host, check)] = ("skipped", "", reason)
            elif report.evaluated.get(check):
                cells[(host, check)] = ("pass", "", "passed")
    return cells


def _device_map(report: CheckReport, hosts: list[dict[str, Any]]) -> str:
    rows = []
    for host in hosts:
        name = host["name"]
        tds = []
        for dev in host["devices"]:
            found = [f for f in report.findings if f.host == name and f.device == dev
                     and f.check != "ping"]
            reach = any(f.host == name and f.check == "reach" for f in report.findings)
            status = (_worst(_status(f) for f in found) if found
                      else "skipped" if reach else "pass")
            title = "; ".join(f"{f.check}: {f.message}" for f in found) or status
            tds.append(_cell(status, str(dev), f"{name} device {dev}: {title}", "dev"))
        roles = "/".join(host.get("roles") or [])
        rows.append(f'<tr><td class="rowhead">{escape(name)} <small>{escape(roles)}</small>'
                    f'</td>{"".join(tds)}</tr>')
    return f'<table class="devices">{"".join(rows)}</table>'


Endpoint = tuple[str, int]


def _endpoints(hosts: list[dict[str, Any]], role: str) -> list[Endpoint]:
    return [(h["name"], d) for h in hosts if role in (h.get("roles") or []) for d in h["devices"]]


def _heatmap(report: CheckReport, prefill: list[Endpoint], decode: list[Endpoint]) -> str:
    """SVG: rows = prefill devices, columns = decode devices; a green field with the
    failing (red) and skipped (grey) pairs drawn on it, so 512 × 512 stays small."""
    if not prefill or not decode:
        return "<p>No prefill × decode pairs to show.</p>"
    cell = max(3, min(24, 900 // max(len(prefill), len(decode))))
    labels = max(len(prefill), len(decode)) <= 64
    left, top = (150, 110) if labels else (20, 20)
    width, height = left + cell * len(decode) + 100, top + cell * len(prefill) + 10
    row = {ep: i for i, ep in enumerate(prefill)}
    col = {ep: i for i, ep in enumerate(decode)}
    marks: dict[tuple[int, int], str] = {}

    def mark(a: Endpoint, b: Endpoint | None, status: str) -> None:
        if b is None:
            return
        for p, d in ((a, b), (b, a)):
            if p in row and d in col:
                key = (row[p], col[d])
                marks[key] = _worst((marks.get(key, "none"), status))

    for f in report.findings:
        if f.check == "ping" and f.device is not None and f.peer is not None:
            mark((f.host or "", f.device), (f.peer.host, f.peer.device), _status(f))
    for s in report.skipped:
        if s.check == "ping" and s.device is not None and s.peer is not None:
            mark((s.host, s.device), (s.peer.host, s.peer.device), "skipped")
    base = "pass" if report.pings.mode == "full" and report.pings.run else "none"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-size="11" font-family="sans-serif">',
           f'<rect x="{left}" y="{top}" width="{cell * len(decode)}" '
           f'height="{cell * len(prefill)}" fill="{COLOURS[base]}"/>']
    for (r, c), status in sorted(marks.items()):
        out.append(f'<rect x="{left + c * cell}" y="{top + r * cell}" width="{cell}" '
                   f'height="{cell}" fill="{COLOURS[status]}"><title>'
                   f"{escape(f'{prefill[r][0]}/{prefill[r][1]} ↔ {decode[c][0]}/{decode[c][1]}')}"
                   f": {status}</title></rect>")
    if labels:
        for i, (h, d) in enumerate(prefill):
            out.append(f'<text x="{left - 4}" y="{top + i * cell + cell - 4}" '
                       f'text-anchor="end">{escape(h)}/{d}</text>')
        for i, (h, d) in enumerate(decode):
            x, y = left + i * cell + cell - 4, top - 4
            out.append(f'<text x="{x}" y="{y}" transform="rotate(-60 {x} {y})">'
                       f"{escape(h)}/{d}</text>")
    out.append("</svg>")
    note = ("" if base == "pass" else f"<p>Ping plan <code>{escape(report.pings.mode)}</code>: "
            "only the failing and skipped pairs are known; the others passed or were not "
            "in the plan.</p>")
    return note + "".join(out)


def check_links_html(report: CheckReport, command: str, exit_code: int) -> str:
    """The page for one check-links run (``report`` as returned, after any --fix)."""
    hosts = report.targets.get("hosts", [])
    names = [h["name"] for h in hosts]
    pings = report.pings
    meta = run_metadata(command, exit_code, (
        ("source", str(report.targets.get("source"))), ("SoC", str(report.targets.get("soc"))),
        ("hosts / devices", f"{len(hosts)} / {sum(len(h['devices']) for h in hosts)}"),
        ("pings", f"{pings.mode} over {pings.transport}: {pings.run} run, {pings.failed} "
                  f"failed, {pings.skipped} skipped"),
        ("faults / warnings", f"{len(report.faults)} / "
                              f"{len(report.findings) - len(report.faults)}"),
        ("wall time", f"{report.wall_s:.1f} s")))
    checks = [c for c in CHECKS if report.evaluated.get(c)
              or any(f.check == c for f in report.findings)]
    rows = _rows(report.findings)
    return page("ascend-pd check-links", meta, [
        ("Hosts × checks", _grid(names, checks, _host_checks(report, names))),
        ("Devices (worst finding per device; pings in the heatmap)", _device_map(report, hosts)),
        ("Prefill × decode reachability", _heatmap(report, _endpoints(hosts, "prefill"),
                                                   _endpoints(hosts, "decode"))),
        ("Findings and fixes", _findings_table(rows)),
    ])


def doctor_html(report: DoctorReport, command: str, exit_code: int) -> str:
    """The page for one doctor run: the host x check grid and the findings with fixes."""
    names = [h.host for h in report.hosts]
    checks = list(dict.fromkeys(c.check for c in report.checks))
    cells = {(c.host or "", c.check): (_status(c), "", c.message) for c in report.checks}
    for h in report.hosts:
        if h.error:
            for check in checks:
                cells.setdefault((h.host, check), ("skipped", "", h.error))
    rows = _rows(report.checks)
    rows += [("fault", h.host, "probe", h.error, "the host answers", "")
             for h in report.hosts if h.error]
    meta = run_metadata(command, exit_code, (("hosts", str(len(report.hosts))),))
    return page("ascend-pd doctor", meta, [("Hosts × checks", _grid(names, checks, cells)),
                                           ("Findings and fixes", _findings_table(rows))])


def write_html(path: str | Path, text: str) -> Path:
    """Write the page atomically (never a partial file)."""
    return atomic_write_text(Path(path), text, mode=0o644)  # a report to share
