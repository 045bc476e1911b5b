"""Diagnose many logs: files on disk or instance logs read through the runners."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ascend_pd.diagnose.catalogue import Catalogue, Match, diagnose_text, load_catalogue
from ascend_pd.errors import RemoteCommandError, UsageError
from ascend_pd.launch.units import START_MARKER, StateLayout
from ascend_pd.runners.base import CommandRunner
from ascend_pd.spec.models import ClusterSpec

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": [{"name": s.name, "lines": s.lines} for s in self.sources],
            "matches": [m.to_dict() for m in self.matches],
            "clean": not self.matches,
        }

    def render(self) -> str:
        out: list[str] = []
        for m in self.matches:
            out.append(f"{m.source}:{m.line_no}: [{m.id}] {m.entry.title}")
            out.append(f"    | {m.line.strip()}")
            if m.then_line is not None:
                out.append(f"    | ...{m.then_line_no}: {m.then_line.strip()}")
            if m.count > 1:
                out.append(f"    (matched {m.count} lines)")
            out.append(f"    cause: {m.entry.cause}")
            out.append(f"    fix:   {m.entry.fix}")
            out.append(f"    check: {m.entry.check}")
        total = sum(s.lines for s in self.sources)
        logs = f"{len(self.sources)} log(s), {total} lines"
        out.append(f"{len(self.matches)} known problem(s) found in {logs}" if self.matches
                   else f"no known problem found in {logs}")
        return "\n".join(out)


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
