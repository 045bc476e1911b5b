"""Run many (host, argv) jobs in parallel, bounded across hosts and per host.

A failing host is data: its jobs come back as outcomes carrying the error, and the other
hosts carry on. Once a host proves unreachable (connect, auth or host-key failure) its
remaining jobs fail at once instead of each waiting out its own timeout.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Final

from ascend_pd.errors import HostKeyError, HostUnreachableError, RunnerError, SSHAuthError
from ascend_pd.runners.base import DEFAULT_TIMEOUT_S, CommandResult, CommandRunner

#: hccn_tool takes a device lock; a second concurrent caller gets this on stdout, exit 11.
BUSY_MARKER: Final[str] = "hccn_tool is busy, please try again."
BUSY_EXIT: Final[int] = 11

#: Errors after which nothing else will work on that host in this run.
_HOST_FATAL = (HostUnreachableError, SSHAuthError, HostKeyError)


def is_tool_busy(result: CommandResult) -> bool:
    """True when hccn_tool refused the command because another call holds its lock."""
    return result.exit_code == BUSY_EXIT and BUSY_MARKER in result.stdout


@dataclass(frozen=True)
class Job:
    """One command for one host. ``key`` is the caller's tag, echoed in the outcome."""

    host: str
    argv: tuple[str, ...]
    key: Hashable = None
    timeout: float = DEFAULT_TIMEOUT_S
    env: Mapping[str, str] | None = None
    #: bytes fed to the command (file contents travel here, never in argv)
    stdin: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    """A job's result, or the error that stopped it. Exactly one of the two is set."""

    job: Job
    result: CommandResult | None = None
    error: RunnerError | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for the busy lock: attempts include the first try."""

    attempts: int = 6
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0

    def delay(self, attempt: int) -> float:
        # Full jitter: callers that collided once should not collide again in lockstep.
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


def run_with_retry(
    runner: CommandRunner,
    job: Job,
    retry: RetryPolicy = RetryPolicy(),
    retry_if: Callable[[CommandResult], bool] = is_tool_busy,
) -> CommandResult:
    """Run one job, re-running it with backoff while ``retry_if`` says so."""
    attempt = 0
    while True:
        result = runner.run(job.argv, timeout=job.timeout, env=job.env, stdin=job.stdin)
        attempt += 1
        if not retry_if(result) or attempt >= retry.attempts:
            if attempt > 1:
                result = CommandResult(
                    host=result.host, argv=result.argv, exit_code=result.exit_code,
                    stdout=result.stdout, stderr=result.stderr,
                    duration_s=result.duration_s, attempts=attempt,
                )
            return result
        time.sleep(retry.delay(attempt))


@dataclass
class RunnerPool:
    """Creates one runner per host on first use and reuses it (one SSH connection per host)."""

    factory: Callable[[str], CommandRunner]
    _runners: dict[str, CommandRunner] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, host: str) -> CommandRunner:
        with self._lock:
            runner = self._runners.get(host)
            if runner is None:
                runner = self._runners[host] = self.factory(host)
            return runner

    def close(self) -> None:
        with self._lock:
            for runner in self._runners.values():
                runner.close()
            self._runners.clear()

    def __enter__(self) -> RunnerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


ProgressFn = Callable[[Outcome, int, int], None]


def fan_out(
    jobs: Iterable[Job],
    runner_for: Callable[[str], CommandRunner],
    *,
    max_hosts: int = 64,
    per_host: int = 4,
    retry: RetryPolicy = RetryPolicy(),
    retry_if: Callable[[CommandResult], bool] = is_tool_busy,
    on_done: ProgressFn | None = None,
) -> list[Outcome]:
    """Run ``jobs``; return one outcome per job, in the order given.

    Args:
        jobs: the commands; jobs of one host start in the order given.
        runner_for: host name -> runner (use a :class:`RunnerPool` to share connections).
        max_hosts: hosts with commands in flight at once.
        per_host: commands in flight on one host at once (hccn_tool's lock is per host).
        retry: backoff while ``retry_if`` holds (the busy lock by default).
        on_done: progress callback ``(outcome, done, total)``; called from this thread.

    Returns:
        Outcomes aligned with ``jobs``. Runner errors are captured, never raised.
    """
    job_list = list(jobs)
    queues: dict[str, deque[int]] = {}
    for index, job in enumerate(job_list):
        queues.setdefault(job.host, deque()).append(index)
    outcomes: list[Outcome | None] = [None] * len(job_list)
    active: dict[str, int] = dict.fromkeys(queues, 0)
    dead: dict[str, RunnerError] = {}
    done = 0

    def work(index: int) -> Outcome:
        job = job_list[index]
        if job.host in dead:
            return Outcome(job, error=dead[job.host])
        try:
            runner = runner_for(job.host)
            return Outcome(job, result=run_with_retry(runner, job, retry, retry_if))
        except RunnerError as exc:
            if isinstance(exc, _HOST_FATAL):
                dead.setdefault(job.host, exc)
            return Outcome(job, error=exc)

    workers = max(1, min(len(job_list), max_hosts * per_host))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout") as pool:
        running: dict[Future[Outcome], tuple[str, int]] = {}

        def launch() -> None:
            busy_hosts = sum(1 for n in active.values() if n)
            for host, queue in queues.items():
                while queue and active[host] < per_host:
                    if active[host] == 0 and busy_hosts >= max_hosts:
                        break
                    if active[host] == 0:
                        busy_hosts += 1
                    index = queue.popleft()
                    active[host] += 1
                    running[pool.submit(work, index)] = (host, index)

        launch()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                host, index = running.pop(future)
                active[host] -= 1
                outcome = future.result()
                outcomes[index] = outcome
                done += 1
                if on_done is not None:
                    on_done(outcome, done, len(job_list))
            launch()
    return [o for o in outcomes if o is not None]
