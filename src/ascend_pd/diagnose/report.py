"""Diagnose many logs: files on disk or instance logs read through the runners."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ascend_pd.diagnose.catalogue import Catalogue, Match, diagnose_text, load_catalogue
from ascend_pd.errors import RemoteCommandError, UsageError
from ascend_pd.findings import Finding
from ascend_pd.launch.units import START_MARKER, StateLayout
from ascend_pd.printer import Layout, render_findings
from ascend_pd.runners.base import CommandRunner
from ascend_pd.spec.models import ClusterSpec

#: the ``schema`` of ``diagnose --json``'s data (docs/json.md)
SCHEMA: Final[str] = "ascend-pd/diagnose/v1"
#: one block per known problem: ``decode-0@node-d:22 tls-inconsistent: FOUND: <title>``
LAYOUT: Final[Layout] = Layout(labels={"error": "FOUND"})
#: How much of an instance log is read from a host: enough for start-up plus the last
#: minutes of a busy server, small enough to ship over SSH in well under a second.
TAIL_LINES: Final[int] = 5000

# The log path is prefixed with $ASCEND_PD_SYSROOT (empty on real hosts) so that a
# simulated host can be a directory tree, like the doctor probe.
_TAIL_SCRIPT: Final[str] = 'exec tail -n "$2" -- "$1"'


@dataclass(frozen=True)
class LogSource:
    """One log that was read: its name and how many lines it had."""

    name: str
    lines: int


@dataclass
class DiagnoseReport:
    """Every known problem found, per log."""

    sources: list[LogSource] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.matches else 0

    @property
    def findings(self) -> list[Finding]:
        return [m.to_finding() for m in self.matches]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "sources": [{"name": s.name, "lines": s.lines} for s in self.sources],
            "findings": [f.to_dict() for f in self.findings],
            "clean": not self.matches,
        }

    def render(self) -> str:
        total = sum(s.lines for s in self.sources)
        logs = f"{len(self.sources)} log(s), {total} lines"
        verdict = (f"{len(self.matches)} known problem(s) found in {logs}" if self.matches
                   else f"no known problem found in {logs}")
        return render_findings(self.findings, LAYOUT, tail=[verdict])


def diagnose_logs(
    logs: Iterable[tuple[str, str]], catalogue: Catalogue | None = None
) -> DiagnoseReport:
    """Diagnose ``(source name, text)`` pairs."""
    cat = catalogue or load_catalogue()
    report = DiagnoseReport()
    for name, text in logs:
        report.sources.append(LogSource(name, len(text.splitlines())))
        report.matches.extend(diagnose_text(text, name, cat))
    return report


def read_log_files(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """Read local log files (undecodable bytes replaced: logs mix encodings).

    Raises:
        UsageError: a file does not exist or cannot be read.
    """
    logs = []
    for path in paths:
        try:
            logs.append((str(path), Path(path).read_text(encoding="utf-8", errors="replace")))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}",
                             hint="Pass existing log files, or use --host/--role with -c.") from exc
    return logs


def instance_log_path(spec: ClusterSpec, instance: str, host: str) -> str:
    """Where launch writes an instance's log on a host."""
    return StateLayout(spec.state_dir.rstrip("/")).log_of(f"{instance}@{host}")


def latest_run(text: str) -> str:
    """The part of a log written by the latest start (launch appends one log per host)."""
    cut = text.rfind("\n" + START_MARKER)
    if cut >= 0:
        return text[cut + 1:]
    return text


def read_instance_logs(
    spec: ClusterSpec, host: str, role: str, runner: CommandRunner, *, lines: int = TAIL_LINES
) -> list[tuple[str, str]]:
    """The last ``lines`` lines of every ``role`` instance's log on ``host``.

    Raises:
        UsageError: no instance of that role runs on that host.
        RemoteCommandError: a log could not be read (not launched yet?).
    """
    try:
        spec.host(host)
    except KeyError as exc:
        known = ", ".join(h.name for h in spec.hosts)
        raise UsageError(f"no host '{host}' in the spec", hint=f"use one of: {known}") from exc
    names = [inst.name for r, inst in spec.instances if r == role and host in inst.hosts]
    if not names:
        raise UsageError(f"no {role} instance runs on host '{host}'",
                         hint="check prefill[]/decode[] hosts in pd.yaml")
    logs = []
    for name in names:
        path = instance_log_path(spec, name, host)
        result = runner.run(["sh", "-c", _TAIL_SCRIPT, "ascend-pd-log", path, str(lines)])
        if result.failed:
            raise RemoteCommandError(result, hint=(
                f"{shlex.quote(path)} is written by `ascend-pd launch`; has {name} been "
                "launched on this host?"))
        # Only the latest start: an error from a run that was since fixed is not news.
        logs.append((f"{name}@{host}", latest_run(result.stdout)))
    return logs
