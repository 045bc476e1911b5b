"""Run commands on this machine with subprocess (argv lists, never a shell)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from ascend_pd.errors import CommandTimeoutError, RunnerError
from ascend_pd.runners.base import DEFAULT_TIMEOUT_S, CommandResult, CommandRunner


class LocalRunner(CommandRunner):
    """Runs commands as child processes of this process.

    Args:
        host: the name reported in results (the spec's host name).
        env: variables added to every command (e.g. which simulated host this is).
    """

    def __init__(self, host: str = "localhost", *, env: Mapping[str, str] | None = None) -> None:
        super().__init__(host)
        self._env = dict(env or {})

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        full_env = {**os.environ, **self._env, **(env or {})}
        start = time.monotonic()
        try:
            # A new session so that a timeout kills the whole process group, not just
            # the direct child (tools that fork would otherwise keep running).
            proc = subprocess.Popen(
                list(argv),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                env=full_env,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise RunnerError(
                f"{self.host}: command not found: {argv[0]}",
                host=self.host,
                hint="Install the tool or give its full path in the spec "
                "(hosts[].hccn_tool / npu_smi).",
            ) from exc
        except OSError as exc:
            raise RunnerError(f"{self.host}: cannot run {argv[0]}: {exc}", host=self.host) from exc
        try:
            out_b, err_b = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            raise CommandTimeoutError(
                f"{self.host}: `{' '.join(argv)}` did not finish within {timeout:g} s",
                host=self.host,
                hint="The host or device may be hung; check it, or raise --timeout.",
            ) from exc
        return CommandResult(
            host=self.host,
            argv=tuple(argv),
            exit_code=proc.returncode,
            stdout=out_b.decode("utf-8", "replace"),
            stderr=err_b.decode("utf-8", "replace"),
            duration_s=time.monotonic() - start,
        )
