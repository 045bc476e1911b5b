"""An in-process runner that answers from a handler or a table: no process is started.

Unknown commands fail loudly (``SimulatedCommandNotFound``) so that a test can never
silently fall through to a real host.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ascend_pd.errors import CommandTimeoutError, SimulatedCommandNotFound
from ascend_pd.runners.base import DEFAULT_TIMEOUT_S, CommandResult, CommandRunner


@dataclass(frozen=True)
class Reply:
    """A canned answer: what the command prints and how it exits."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    #: simulated wall time; a delay longer than the timeout raises CommandTimeoutError
    delay_s: float = 0.0


Handler = Callable[[Sequence[str], Mapping[str, str]], Reply]
TableKey = tuple[str, ...] | re.Pattern[str]


class SimulatedRunner(CommandRunner):
    """Answers commands from ``handler(argv, env)`` or from a table.

    Args:
        host: the host name reported in results.
        handler: called with the argv and env; returns a :class:`Reply`.
        table: ``{argv tuple | compiled regex over the joined command: Reply | [Reply...]}``.
            A list is consumed one reply per call; its last reply repeats.
    """

    def __init__(
        self,
        host: str,
        handler: Handler | None = None,
        *,
        table: Mapping[TableKey, Reply | list[Reply]] | None = None,
    ) -> None:
        super().__init__(host)
        self._handler = handler
        self._table = {
            k: (list(v) if isinstance(v, list) else [v]) for k, v in (table or {}).items()
        }
        self._lock = threading.Lock()
        self.calls: list[tuple[str, ...]] = []

    def _lookup(self, argv: tuple[str, ...]) -> Reply | None:
        joined = " ".join(argv)
        for key, replies in self._table.items():
            hit = key == argv if isinstance(key, tuple) else bool(key.fullmatch(joined))
            if hit:
                return replies.pop(0) if len(replies) > 1 else replies[0]
        return None

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,  # the simulated tools read no input
    ) -> CommandResult:
        key = tuple(argv)
        with self._lock:
            self.calls.append(key)
            reply = self._lookup(key)
        if reply is None and self._handler is not None:
            reply = self._handler(key, dict(env or {}))
        if reply is None:
            raise SimulatedCommandNotFound(
                f"{self.host}: the simulated backend has no answer for `{' '.join(argv)}`",
                host=self.host,
            )
        if reply.delay_s > timeout:
            time.sleep(timeout)
            raise CommandTimeoutError(
                f"{self.host}: `{' '.join(argv)}` did not finish within {timeout:g} s",
                host=self.host,
            )
        if reply.delay_s:
            time.sleep(reply.delay_s)
        return CommandResult(
            host=self.host,
            argv=key,
            exit_code=reply.exit_code,
            stdout=reply.stdout,
            stderr=reply.stderr,
            duration_s=reply.delay_s,
        )
