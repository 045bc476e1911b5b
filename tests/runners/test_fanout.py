"""fan_out: per-host results in job order, bounded concurrency, busy-lock retry, dead hosts."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from ascend_pd.errors import HostUnreachableError, RemoteCommandError
from ascend_pd.runners import (
    CommandResult,
    CommandRunner,
    Job,
    Outcome,
    Reply,
    RetryPolicy,
    RunnerPool,
    SimulatedRunner,
    fan_out,
)
from ascend_pd.runners.base import DEFAULT_TIMEOUT_S
from ascend_pd.runners.fanout import BUSY_EXIT, BUSY_MARKER

FAST_RETRY = RetryPolicy(attempts=4, base_delay_s=0.001, max_delay_s=0.005)


def echo_runner(host: str) -> SimulatedRunner:
    return SimulatedRunner(host, lambda argv, env: Reply(stdout=f"{host}:{' '.join(argv)}\n"))


class Unreachable(CommandRunner):
    """A host whose connection always fails; counts how often it was tried."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.calls = 0

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S,
            env: Mapping[str, str] | None = None,
            stdin: bytes | None = None) -> CommandResult:
        self.calls += 1
        time.sleep(0.05)
        raise HostUnreachableError(f"{self.host}: connection refused", host=self.host)


class Gauge(CommandRunner):
    """Sleeps a little per command and records the peak concurrency, per host and overall."""

    peak_total = 0
    _active_total = 0
    _lock = threading.Lock()

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.active = 0
        self.peak = 0

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S,
            env: Mapping[str, str] | None = None,
            stdin: bytes | None = None) -> CommandResult:
        with Gauge._lock:
            self.active += 1
            Gauge._active_total += 1
            self.peak = max(self.peak, self.active)
            Gauge.peak_total = max(Gauge.peak_total, Gauge._active_total)
        time.sleep(0.05)
        with Gauge._lock:
            self.active -= 1
            Gauge._active_total -= 1
        return CommandResult(self.host, tuple(argv), 0, "", "", 0.05)


def test_outcomes_come_back_in_job_order_with_their_keys() -> None:
    jobs = [Job(h, ("hccn_tool", "-i", str(d), "-ip", "-g"), key=(h, d))
            for d in range(3) for h in ("a", "b")]
    with RunnerPool(echo_runner) as pool:
        outcomes = fan_out(jobs, pool.get)
    assert [o.job.key for o in outcomes] == [j.key for j in jobs]
    assert all(o.ok for o in outcomes)
    assert outcomes[3].result is not None
    assert outcomes[3].result.stdout == "b:hccn_tool -i 1 -ip -g\n"


def test_an_unreachable_host_fails_fast_and_the_others_still_report() -> None:
    dead = Unreachable("down")
    runners: dict[str, CommandRunner] = {"up": echo_runner("up"), "down": dead}
    jobs = [Job(h, ("true",), key=i) for i in range(4) for h in ("up", "down")]
    outcomes = fan_out(jobs, runners.__getitem__, per_host=1)
    up = [o for o in outcomes if o.job.host == "up"]
    down = [o for o in outcomes if o.job.host == "down"]
    assert all(o.ok for o in up)
    assert all(isinstance(o.error, HostUnreachableError) for o in down)
    assert dead.calls == 1, "later jobs of a dead host must not try to connect again"


def test_busy_tool_is_retried_until_it_answers() -> None:
    busy = Reply(stdout=BUSY_MARKER + "\n", exit_code=BUSY_EXIT)
    runner = SimulatedRunner("a", table={("hccn_tool", "-i", "0", "-link", "-g"): [
        busy, busy, Reply(stdout="link status: UP\n")]})
    [outcome] = fan_out([Job("a", ("hccn_tool", "-i", "0", "-link", "-g"))],
                        lambda _: runner, retry=FAST_RETRY)
    assert outcome.result is not None
    assert (outcome.result.stdout, outcome.result.attempts) == ("link status: UP\n", 3)


def test_busy_forever_returns_the_last_busy_result() -> None:
    busy = Reply(stdout=BUSY_MARKER + "\n", exit_code=BUSY_EXIT)
    runner = SimulatedRunner("a", table={("x",): busy})
    [outcome] = fan_out([Job("a", ("x",))], lambda _: runner, retry=FAST_RETRY)
    assert outcome.result is not None
    assert (outcome.result.exit_code, outcome.result.attempts) == (BUSY_EXIT, 4)
    assert str(RemoteCommandError(outcome.result)).endswith(BUSY_MARKER)


def test_concurrency_is_bounded_per_host_and_across_hosts() -> None:
    Gauge.peak_total = 0
    gauges = {h: Gauge(h) for h in ("a", "b", "c")}
    jobs = [Job(h, ("true",)) for h in gauges for _ in range(6)]
    outcomes = fan_out(jobs, gauges.__getitem__, max_hosts=2, per_host=2)
    assert all(o.ok for o in outcomes)
    assert max(g.peak for g in gauges.values()) == 2
    assert Gauge.peak_total <= 4


def test_progress_callback_sees_every_outcome() -> None:
    seen: list[tuple[int, int]] = []

    def progress(outcome: Outcome, done: int, total: int) -> None:
        seen.append((done, total))

    fan_out([Job(h, ("true",)) for h in "abc"], echo_runner, on_done=progress)
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_pool_makes_one_runner_per_host_and_closes_them() -> None:
    made: list[str] = []
    closed: list[str] = []

    class Tracked(SimulatedRunner):
        def close(self) -> None:
            closed.append(self.host)

    def factory(host: str) -> CommandRunner:
        made.append(host)
        return Tracked(host, lambda argv, env: Reply())

    with RunnerPool(factory) as pool:
        fan_out([Job(h, ("true",)) for h in "abab"], pool.get)
    assert sorted(made) == ["a", "b"]
    assert sorted(closed) == ["a", "b"]
