"""Typed errors for ascend-pd, each with a remediation hint and a documented exit code.

The tree (exit code in brackets; see docs/exit-codes.md)::

    AscendPDError                      [1]  base: message + hint
      UsageError                       [2]  conflicting or missing CLI flags
      SpecError                        [2]  spec YAML unreadable or invalid (names key and line)
      FileAccessError                  [2]  a file cannot be read or written (full, read-only)
      RunnerError                      [3]  a command could not be run on a host
        HostUnreachableError           [3]  DNS / TCP / connect timeout
        SSHAuthError                   [3]  key, agent or user rejected
        HostKeyError                   [3]  host key unknown or changed (never silently accepted)
        CommandTimeoutError            [3]  the command did not finish within its timeout
        RemoteCommandError             [3]  carries the CommandResult; shows exit code + stderr tail
        SimulatedCommandNotFound       [3]  the simulated backend has no answer for an argv
      ParseError                       [4]  tool output not recognised (quotes the line)
      RanktableError                   [5]  device facts inconsistent with the spec / each other
        DeviceIpMissingError           [13] a device has no IP configured (hccn_tool exit 13)
      RenderError                      [6]  a template could not be rendered
      LaunchError                      [7]  an instance failed to start or become ready
      ProxyError                       [8]  proxy configuration or runtime failure
        ProxyConfigError               [8]  bad backend address, policy or backend list

Exit codes 0 (success) and 1 (the command ran and found problems) are used by reports,
not by exceptions. Library code raises these; only ``ascend_pd.cli`` prints them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ascend_pd.findings import Finding
    from ascend_pd.runners.base import CommandResult


class AscendPDError(Exception):
    """Base of every error ascend-pd raises on purpose.

    Args:
        message: one line saying what went wrong, naming the key, host or device.
        hint: what to do next (the flag to pass, the command to run, the key to change).
    """

    exit_code: ClassVar[int] = 1
    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, object]:
        return {
            "type": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


class UsageError(AscendPDError):
    """Flags that contradict each other or are missing."""

    exit_code = 2


class FileAccessError(UsageError):
    """A file the command reads or writes cannot be (no space, read-only, permissions)."""

    @classmethod
    def from_os_error(cls, exc: OSError) -> FileAccessError:
        what = f"{exc.filename}: " if exc.filename else ""
        return cls(
            f"{what}{exc.strerror or exc}",
            hint="Check the path, its permissions and the free space of its filesystem "
            "(`df -h`), or write the output elsewhere.",
        )


class _ManyProblems(AscendPDError):
    """An error that lists every problem found, one line each, so all can be fixed at once.

    With ``findings`` (the one finding type) the lines are their one-line form and the JSON
    error carries them too (``errors[].findings``, docs/json.md).
    """

    def __init__(
        self, message: str, *, hint: str | None = None, problems: list[str] | None = None,
        findings: list[Finding] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.findings = list(findings or [])
        if problems is None and self.findings:
            from ascend_pd.printer import finding_line  # the one printer; it imports no errors

            problems = [finding_line(f, severity=False) for f in self.findings]
        self.problems = problems or [message]

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "problems": self.problems,
                "findings": [f.to_dict() for f in self.findings]}


class SpecError(_ManyProblems):
    """The cluster spec is unreadable or invalid.

    ``problems`` holds one line per violation, each naming the key path (and YAML line).
    """

    exit_code = 2


class RunnerError(AscendPDError):
    """A command could not be run on a host (the host is named in the message)."""

    exit_code = 3

    def __init__(self, message: str, *, host: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.host = host


class HostUnreachableError(RunnerError):
    """Name resolution, TCP connect or SSH banner failed or timed out."""


class SSHAuthError(RunnerError):
    """The SSH server rejected every key / agent identity for the user."""


class HostKeyError(RunnerError):
    """The host key is not in known_hosts, or differs from the recorded one."""


class CommandTimeoutError(RunnerError):
    """The command started but did not finish within its timeout."""


class RemoteCommandError(RunnerError):
    """A command ran and failed in a way the caller cannot treat as data."""

    def __init__(self, result: CommandResult, *, hint: str | None = None) -> None:
        tail = result.tail("stderr", 5) or result.tail("stdout", 5)
        message = (
            f"{result.host}: `{result.command}` exited {result.exit_code}"
            + (f": {tail}" if tail else "")
        )
        super().__init__(message, host=result.host, hint=hint)
        self.result = result


class SimulatedCommandNotFound(RunnerError):
    """The simulated backend was asked for a command it has no answer for."""


class ParseError(AscendPDError):
    """Tool output did not match any known format; ``line`` is the offending line."""

    exit_code = 4

    def __init__(self, message: str, *, line: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint or (
            "The output format is not recognised (driver version?). "
            "Re-run with -v and attach the raw output to a bug report."
        ))
        self.line = line


class RanktableError(_ManyProblems):
    """Collected device facts are inconsistent with the spec or with each other."""

    exit_code = 5


class DeviceIpMissingError(RanktableError):
    """A device has no RoCE / vNIC IP configured (hccn_tool exits 13 for this)."""

    exit_code = 13


class RenderError(AscendPDError):
    """A launch template could not be rendered (missing variable, missing template)."""

    exit_code = 6


class LaunchError(AscendPDError):
    """An instance failed to start, died, or did not become ready in time."""

    exit_code = 7


class ProxyError(AscendPDError):
    """The proxy configuration is invalid or the proxy could not start."""

    exit_code = 8


class ProxyConfigError(ProxyError, UsageError):
    """A proxy backend address, policy or backend list is invalid.

    Exit 8 like every proxy configuration error (docs/exit-codes.md); still a UsageError,
    so callers that answer bad input (the admin API's 400) keep catching it as one.
    """

    exit_code = 8
