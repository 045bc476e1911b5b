"""Render results for people (tables, progress on a terminal) or runbooks (a JSON envelope).

Findings and tables are printed by the one printer, :mod:`ascend_pd.printer` (``table`` is
re-exported here for the commands' own tables); this module adds the envelope, errors and
progress.

The JSON envelope is stable (docs/json.md)::

    {"ascend_pd_result_version": 1, "command": "...", "status": "ok|findings|error",
     "exit_code": 0, "data": {...}, "errors": [{"type", "message", "hint", "exit_code"}]}
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TextIO

import click

from ascend_pd.errors import AscendPDError
from ascend_pd.printer import table

__all__ = ["RESULT_VERSION", "Progress", "envelope", "finish", "print_error", "print_json",
           "table"]

RESULT_VERSION: Final[int] = 1


def envelope(
    command: str, data: Any, exit_code: int, errors: Sequence[dict[str, object]] = ()
) -> dict[str, Any]:
    status = "ok" if exit_code == 0 else ("findings" if exit_code == 1 and not errors else "error")
    return {
        "ascend_pd_result_version": RESULT_VERSION,
        "command": command,
        "status": status,
        "exit_code": exit_code,
        "data": data,
        "errors": list(errors),
    }


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


def print_error(err: AscendPDError, *, stream: TextIO | None = None) -> None:
    """The one place user-facing errors are printed in human mode."""
    out = stream or sys.stderr
    problems = getattr(err, "problems", None)
    print(f"Error: {err.message}", file=out)
    if problems and len(problems) > 1:
        for line in problems:
            print(f"  - {line}", file=out)
    if err.hint:
        print(f"Hint: {err.hint}", file=out)


class Progress:
    """A one-line progress counter on stderr, only on a terminal and never in JSON mode."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def update(self, done: int, total: int, note: str = "") -> None:
        if not self.enabled:
            return
        with self._lock:
            elapsed = time.monotonic() - self._start
            sys.stderr.write(f"\r{self.label}: {done}/{total} ({elapsed:.1f}s) {note[:40]:<40}")
            sys.stderr.flush()

    def step(self, message: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{message}\x1b[K\n")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()

    def callback(self) -> Callable[[Any, int, int], None]:
        return lambda _item, done, total: self.update(done, total)


def finish(json_mode: bool, command: str, data: Any, human: str | None, exit_code: int) -> None:
    """Print the result (envelope or text) and exit with ``exit_code``."""
    if json_mode:
        print_json(envelope(command, data, exit_code))
    elif human:
        click.echo(human)
    click.get_current_context().exit(exit_code)
