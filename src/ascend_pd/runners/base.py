"""The execution seam: run an argv on a host, get one CommandResult back."""

from __future__ import annotations

import abc
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal

#: Default per-command timeout. hccn_tool queries answer in well under a second; a ping
#: sends 3 packets with a 1 s wait each, so 30 s leaves room for a loaded device.
DEFAULT_TIMEOUT_S: Final[float] = 30.0


@dataclass(frozen=True)
class CommandResult:
    """What one command did on one host. Always returned, whatever the exit code."""

    host: str
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    #: how many times the command was re-run because the tool said it was busy
    attempts: int = field(default=1, compare=False)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def failed(self) -> bool:
        return not self.ok

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def tail(self, stream: Literal["stdout", "stderr"], lines: int = 5) -> str:
        text = self.stdout if stream == "stdout" else self.stderr
        return "\n".join(text.strip().splitlines()[-lines:])

    def __repr__(self) -> str:
        return (
            f"CommandResult(host={self.host!r}, cmd={self.command!r}, "
            f"exit={self.exit_code}, {self.duration_s * 1000:.0f} ms)"
        )


class CommandRunner(abc.ABC):
    """Runs commands on one host.

    Subclass contract: implement :meth:`run`; it must return a :class:`CommandResult`
    for any command that ran (whatever its exit code), and raise a
    :class:`~ascend_pd.errors.RunnerError` subclass when the command could not be run
    or did not finish within ``timeout`` (``CommandTimeoutError``). ``run`` must be
    safe to call from several threads at once. Override :meth:`close` to release
    connections.
    """

    def __init__(self, host: str) -> None:
        self._host = host

    @property
    def host(self) -> str:
        """The host name this runner reports in results and errors."""
        return self._host

    @abc.abstractmethod
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` (never through a shell unless argv says so).

        Args:
            argv: the program and its arguments.
            timeout: seconds before the command is abandoned.
            env: extra environment variables for this command only. They may hold secrets:
                a runner never puts them on a command line (visible in ``ps`` to every user
                of the host).
            stdin: bytes for the command's standard input (then EOF); None = empty input.

        Returns:
            The result, also for a non-zero exit code.

        Raises:
            RunnerError: the command could not be started or timed out.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release connections held by this runner."""

    def __enter__(self) -> CommandRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
