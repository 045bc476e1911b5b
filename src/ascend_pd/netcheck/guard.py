"""Keep a hung device from stalling the run: after one timeout, its later commands fail fast.

Every command already has a timeout, but a device whose hccn_tool never answers would
otherwise make *each* of its queries and pings wait that timeout in turn. The guard wraps the
runners handed to ``fan_out``: the first command of a device that times out marks the device
hung, and later commands for that device raise :class:`DeviceHungError` at once. The check
reports the device once (check ``hang``) and lists the commands it did not run as skipped.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Mapping, Sequence

from ascend_pd.errors import CommandTimeoutError
from ascend_pd.runners.base import DEFAULT_TIMEOUT_S, CommandResult, CommandRunner


class DeviceHungError(CommandTimeoutError):
    """Not run: an earlier command of the same device timed out in this run."""


def device_of(argv: Sequence[str]) -> int | None:
    """The ``-i N`` device of an hccn_tool argv, None for anything else."""
    if len(argv) > 2 and argv[1] == "-i" and argv[2].isdigit():
        return int(argv[2])
    return None


class HangGuard:
    """Hands out guarded runners (one per host) over ``runner_for``.

    Args:
        runner_for: host name -> runner (usually ``RunnerPool.get``); called once per host.
    """

    def __init__(self, runner_for: Callable[[str], CommandRunner]) -> None:
        self._runner_for = runner_for
        self._lock = threading.Lock()
        self._runners: dict[str, CommandRunner] = {}
        #: (host, device) -> the command that timed out first
        self.hung: dict[tuple[str, int], str] = {}

    def get(self, host: str) -> CommandRunner:
        """The guarded runner of ``host`` (created on first use)."""
        with self._lock:
            runner = self._runners.get(host)
        if runner is None:
            inner = self._runner_for(host)
            with self._lock:
                runner = self._runners.setdefault(host, _Guarded(inner, self))
        return runner

    def _mark(self, host: str, dev: int, command: str) -> None:
        with self._lock:
            self.hung.setdefault((host, dev), command)

    def is_hung(self, host: str, dev: int) -> bool:
        with self._lock:
            return (host, dev) in self.hung


class _Guarded(CommandRunner):
    def __init__(self, inner: CommandRunner, guard: HangGuard) -> None:
        super().__init__(inner.host)
        self._inner = inner
        self._guard = guard

    def run(
        self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S,
        env: Mapping[str, str] | None = None, stdin: bytes | None = None,
    ) -> CommandResult:
        dev = device_of(argv)
        if dev is not None and self._guard.is_hung(self.host, dev):
            raise DeviceHungError(
                f"{self.host}: `{shlex.join(argv)}` not run: device {dev} stopped answering",
                host=self.host)
        try:
            return self._inner.run(argv, timeout=timeout, env=env, stdin=stdin)
        except CommandTimeoutError:
            if dev is not None:
                self._guard._mark(self.host, dev, shlex.join(argv))
            raise
