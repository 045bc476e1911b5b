"""``HccnClient``: hccn_tool over any ``CommandRunner``, plus fan-out helpers.

One host, one call at a time: use the client. Hundreds of calls across hosts: build
``Job``s with :func:`query_job`, run them with ``runners.fanout.fan_out`` and turn each
``Outcome`` into an :class:`HccnReading` with :func:`parse_outcome` (never raises).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

from ascend_pd.errors import AscendPDError, ParseError
from ascend_pd.hccn import commands
from ascend_pd.hccn.commands import Query, query_of
from ascend_pd.hccn.failures import HccnFailure, HccnToolError, classify_error
from ascend_pd.hccn.parse import (
    Gateway,
    Link,
    Lldp,
    NetDetect,
    NetHealth,
    NpuIp,
    Tls,
    Vnic,
    parse_gateway,
    parse_ip,
    parse_link,
    parse_lldp,
    parse_net_health,
    parse_netdetect,
    parse_tls,
    parse_vnic,
)
from ascend_pd.hccn.ping import Ping, parse_ping
from ascend_pd.runners.base import DEFAULT_TIMEOUT_S, CommandResult, CommandRunner
from ascend_pd.runners.fanout import Job, Outcome, RetryPolicy, run_with_retry
from ascend_pd.spec.models import DEFAULT_HCCN_TOOL

Record = NpuIp | Vnic | Link | NetHealth | NetDetect | Gateway | Tls | Lldp | Ping
Parser = Callable[[str, str, int], Any]

#: The parser for each query kind (argv[3] without the dash).
PARSERS: Final[dict[Query, Parser]] = {
    "ip": parse_ip, "vnic": parse_vnic, "link": parse_link, "net_health": parse_net_health,
    "netdetect": parse_netdetect, "gateway": parse_gateway, "tls": parse_tls,
    "lldp": parse_lldp, "ping": parse_ping, "hccs_ping": parse_ping,
}
#: A ping sends 3 packets with up to 1 s each; queries answer far faster.
PING_TIMEOUT_S: Final[float] = 20.0


def build_argv(tool: str, kind: Query, dev: int, address: str | None = None) -> tuple[str, ...]:
    """The argv for one query; ``address`` is required for ``ping`` / ``hccs_ping``."""
    if kind in ("ping", "hccs_ping"):
        if not address:
            raise ValueError(f"{kind} needs a target address")
        return (commands.ping if kind == "ping" else commands.hccs_ping)(tool, dev, address)
    builder: Callable[[str, int], tuple[str, ...]] = getattr(commands, f"{kind}_get")
    return builder(tool, dev)


def query_job(
    host: str, tool: str, kind: Query, dev: int, *, address: str | None = None,
    key: Hashable = None, timeout: float | None = None,
) -> Job:
    """A fan-out ``Job`` for one query; ``key`` defaults to ``(host, kind, dev, address)``."""
    if timeout is None:
        timeout = PING_TIMEOUT_S if kind in ("ping", "hccs_ping") else DEFAULT_TIMEOUT_S
    return Job(host=host, argv=build_argv(tool, kind, dev, address),
               key=(host, kind, dev, address) if key is None else key, timeout=timeout)


@dataclass(frozen=True)
class HccnReading:
    """One query's answer on one host: exactly one of record / failure / error is set.

    ``failure`` is a classified tool failure (busy after retries, bad device, driver error);
    ``error`` is a runner problem (unreachable, timeout) or unparseable output.
    """

    host: str
    kind: Query
    device: int
    record: Record | None = None
    failure: HccnFailure | None = None
    error: AscendPDError | None = None

    @property
    def ok(self) -> bool:
        return self.record is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "host": self.host, "kind": self.kind, "device": self.device,
            "record": None if self.record is None else self.record.to_dict(),
            "failure": None if self.failure is None else self.failure.to_dict(),
            "error": None if self.error is None else self.error.to_dict(),
        }


def parse_result(kind: Query, result: CommandResult) -> Record:
    """Parse a finished call of ``kind``; raises HccnToolError / ParseError."""
    try:
        record: Record = PARSERS[kind](result.stdout, result.stderr, result.exit_code)
    except HccnToolError as exc:
        raise HccnToolError(exc.failure, host=result.host, command=result.command) from None
    return record


def parse_outcome(outcome: Outcome) -> HccnReading:
    """Turn a fan-out outcome of a :func:`query_job` job into a reading (never raises)."""
    recognised = query_of(outcome.job.argv)
    if recognised is None:
        raise ValueError(f"not an hccn_tool query argv: {outcome.job.argv}")
    kind, dev = recognised
    host = outcome.job.host
    if outcome.result is None:
        return HccnReading(host, kind, dev, error=outcome.error)
    try:
        return HccnReading(host, kind, dev, record=parse_result(kind, outcome.result))
    except HccnToolError as exc:
        return HccnReading(host, kind, dev, failure=exc.failure)
    except ParseError as exc:
        return HccnReading(host, kind, dev, error=exc)


class HccnClient:
    """hccn_tool on one host. Methods return parsed records and retry the busy lock.

    Args:
        runner: how to reach the host (local, SSH, simulated).
        tool_path: the hccn_tool executable on that host.
        retry: backoff while the tool answers ``hccn_tool is busy``.
    """

    def __init__(self, runner: CommandRunner, tool_path: str = DEFAULT_HCCN_TOOL, *,
                 retry: RetryPolicy | None = None) -> None:
        self.runner = runner
        self.tool = tool_path
        self.retry = retry or RetryPolicy()

    def run(self, argv: tuple[str, ...], timeout: float = DEFAULT_TIMEOUT_S) -> CommandResult:
        """Run one argv with busy-lock retries and return the raw result."""
        job = Job(self.runner.host, argv, timeout=timeout)
        return run_with_retry(self.runner, job, self.retry)

    def _query(self, kind: Query, dev: int, address: str | None = None) -> Any:
        job = query_job(self.runner.host, self.tool, kind, dev, address=address)
        return parse_result(kind, self.run(job.argv, job.timeout))

    def ip(self, dev: int) -> NpuIp:
        """RoCE IP of ``dev`` (``configured`` is False when none is set)."""
        return self._query("ip", dev)  # type: ignore[no-any-return]

    def vnic(self, dev: int) -> Vnic:
        """A3 vNIC address of ``dev``."""
        return self._query("vnic", dev)  # type: ignore[no-any-return]

    def link(self, dev: int) -> Link:
        """Link status of ``dev``'s RoCE port."""
        return self._query("link", dev)  # type: ignore[no-any-return]

    def net_health(self, dev: int) -> NetHealth:
        """Network health probe result of ``dev``."""
        return self._query("net_health", dev)  # type: ignore[no-any-return]

    def netdetect(self, dev: int) -> NetDetect:
        """The netdetect address of ``dev`` (None when unset)."""
        return self._query("netdetect", dev)  # type: ignore[no-any-return]

    def gateway(self, dev: int) -> Gateway:
        """Default gateway of ``dev`` (None when unset)."""
        return self._query("gateway", dev)  # type: ignore[no-any-return]

    def tls(self, dev: int) -> Tls:
        """TLS switch of ``dev`` (no certificate = disabled)."""
        return self._query("tls", dev)  # type: ignore[no-any-return]

    def lldp(self, dev: int) -> Lldp:
        """LLDP neighbour (switch port) of ``dev``."""
        return self._query("lldp", dev)  # type: ignore[no-any-return]

    def ping(self, dev: int, address: str) -> Ping:
        """RoCE ping from ``dev`` to ``address`` (loss is data: check ``healthy``)."""
        return self._query("ping", dev, address)  # type: ignore[no-any-return]

    def hccs_ping(self, dev: int, address: str) -> Ping:
        """A3 HCCS ping from ``dev`` to a vNIC ``address``."""
        return self._query("hccs_ping", dev, address)  # type: ignore[no-any-return]

    def tls_set(self, dev: int, enable: bool) -> CommandResult:
        """``-tls -s enable 0|1``; raises HccnToolError unless it printed success."""
        result = self.run(commands.tls_set(self.tool, dev, enable))
        if result.failed or "Cmd executed successfully!" not in result.stdout:
            raise HccnToolError(classify_error(result), host=result.host,
                                command=result.command)
        return result
