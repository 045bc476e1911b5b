"""``check_network``: the orchestration, in (up to) three parallel phases.

0. Flag mode only: ``npu-smi info -m`` per host, to learn which devices exist (and A2/A3).
1. Per device, every query (link, net_health, netdetect, gateway, ip, tls, lldp; A3: vnic),
   issued query-major so that a hung device shows up in the first round and its later
   queries fail fast (see ``guard``).
2. Pings to the addresses phase 1 just read, planned by ``pingplan`` (full / plane / sample).

Every command runs through ``fan_out`` with bounded per-host concurrency, busy-lock retries
and a timeout; an unreachable host is one finding and the rest carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from ascend_pd.errors import AscendPDError, HostKeyError, HostUnreachableError, SSHAuthError
from ascend_pd.findings import Finding
from ascend_pd.hccn.client import HccnReading, parse_outcome, query_job
from ascend_pd.hccn.commands import Query
from ascend_pd.netcheck.checks import (
    A2_QUERIES,
    A3_QUERIES,
    Transport,
    evaluate_devices,
    evaluate_ping,
    hang_finding,
    ping_skip,
)
from ascend_pd.netcheck.guard import HangGuard
from ascend_pd.netcheck.pingplan import Endpoint, PingPair, plan_pings
from ascend_pd.netcheck.report import CheckReport, PingSummary, Skipped
from ascend_pd.netcheck.spod import evaluate_spod, spod_jobs
from ascend_pd.netcheck.targets import Soc, Targets, resolve
from ascend_pd.npusmi import commands as smi_commands
from ascend_pd.npusmi.client import parse_smi_outcome
from ascend_pd.npusmi.parse import parse_mapping
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.fanout import Job, Outcome, RetryPolicy, fan_out

#: host -> (hccn_tool path, npu-smi path); ``runners.factory.tool_paths`` fits.
ToolsFor = Callable[[str], tuple[str, str]]
#: (phase, done, total): called from the calling thread as commands finish.
ProgressFn = Callable[[str, int, int], None]
_FATAL: Final = (HostUnreachableError, SSHAuthError, HostKeyError)


@dataclass(frozen=True)
class CheckOptions:
    """Knobs of one run.

    Attributes:
        ping: plan mode: ``auto`` (full up to 1024 P×D pairs, else ``sample:256``), ``full``,
            ``plane`` or ``sample:N`` (docs/check-links.md).
        transport: ``auto`` (A2: RoCE ``-ping``; A3: ``-hccs_ping`` to vNIC IPs), ``roce`` or
            ``hccs``.
        require_lldp: a missing LLDP neighbour is a fault instead of a warning.
        max_hosts: hosts with commands in flight at once.
        per_host: commands in flight on one host at once.
        query_timeout_s / ping_timeout_s: per-command timeouts.
        seed: seed of the sampled ping pairs (same seed, same pairs).
    """

    ping: str = "auto"
    transport: Literal["auto", "roce", "hccs"] = "auto"
    require_lldp: bool = False
    max_hosts: int = 64
    per_host: int = 8
    query_timeout_s: float = 10.0
    ping_timeout_s: float = 20.0
    seed: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: A3: compare ``npu-smi info -t spod-info`` across the hosts (Mooncake over HCCS)
    spod: bool = False


@dataclass
class _Run:
    targets: Targets
    guard: HangGuard
    tools: ToolsFor
    options: CheckOptions
    on_progress: ProgressFn | None
    unreachable: dict[str, tuple[str, str]] = field(default_factory=dict)
    commands: dict[str, dict[str, int]] = field(default_factory=dict)

    def fan_out(self, phase: str, jobs: list[Job]) -> list[Outcome]:
        counts = self.commands.setdefault(phase, {})
        for job in jobs:
            counts[job.host] = counts.get(job.host, 0) + 1
        progress = self.on_progress

        def done(_outcome: Outcome, n: int, total: int) -> None:
            if progress is not None:
                progress(phase, n, total)

        outcomes = fan_out(jobs, self.guard.get, max_hosts=self.options.max_hosts,
                           per_host=self.options.per_host, retry=self.options.retry,
                           on_done=done)
        for outcome in outcomes:
            err = outcome.error
            if isinstance(err, _FATAL):
                self.unreachable.setdefault(outcome.job.host, (
                    err.message, err.hint or "check that the host is up and reachable over SSH"))
        return outcomes


def check_network(
    targets: Targets, runner_for: Callable[[str], CommandRunner], tools: ToolsFor, *,
    options: CheckOptions | None = None, on_progress: ProgressFn | None = None,
) -> CheckReport:
    """Check every device of ``targets`` and the Prefill↔Decode pings between them.

    Args:
        targets: from ``targets_from_spec`` / ``_from_ranktable`` / ``_from_flags``.
        runner_for: host name -> runner (share connections with a ``RunnerPool``).
        tools: host name -> (hccn_tool path, npu-smi path).
        options: plan, transport, concurrency and timeouts.
        on_progress: ``(phase, done, total)`` as commands finish.

    Returns:
        The report; host and device problems are findings, never exceptions.

    Raises:
        UsageError: flag mode asked for more devices than the hosts have.
    """
    opts = options or CheckOptions()
    start = time.monotonic()
    run = _Run(targets, HangGuard(runner_for), tools, opts, on_progress)
    if targets.needs_discovery:
        targets = run.targets = _discover(run)
    soc: Soc = targets.soc or "a2"
    transport: Transport = (("hccs" if soc == "a3" else "roce") if opts.transport == "auto"
                            else opts.transport)
    queries = A3_QUERIES if soc == "a3" else A2_QUERIES
    jobs = [query_job(h.name, tools(h.name)[0], kind, dev, timeout=opts.query_timeout_s)
            for kind in queries for h in targets.hosts if h.name not in run.unreachable
            for dev in targets.devices(h.name)]
    readings: dict[tuple[str, int, Query], HccnReading] = {}
    for outcome in run.fan_out("queries", jobs):
        reading = parse_outcome(outcome)
        readings[(reading.host, reading.device, reading.kind)] = reading
    ev = evaluate_devices(targets, readings, transport=transport, unreachable=run.unreachable,
                          hung=dict(run.guard.hung), require_lldp=opts.require_lldp,
                          timeout_s=opts.query_timeout_s)
    if opts.spod and soc == "a3":
        spod = run.fan_out("spod", spod_jobs(targets, lambda h: tools(h)[1],
                                             opts.query_timeout_s, set(run.unreachable)))
        spod_findings, ev.evaluated["spod"] = evaluate_spod(targets, spod, transport)
        ev.findings.extend(spod_findings)
    plan = plan_pings(targets.endpoints("prefill"), targets.endpoints("decode"), opts.ping,
                      soc=soc, seed=opts.seed, transport=transport)
    skipped: list[Skipped] = list(ev.skipped)
    runnable: list[tuple[PingPair, str]] = []
    for pair in plan.pairs:
        skip = ping_skip(pair, ev)
        if skip is None:
            runnable.append((pair, ev.addresses[(pair.dst.host, pair.dst.device)]))
        else:
            skipped.append(skip)
    kind: Query = "ping" if transport == "roce" else "hccs_ping"
    ping_jobs = [query_job(p.src.host, tools(p.src.host)[0], kind, p.src.device, address=addr,
                           key=i, timeout=opts.ping_timeout_s)
                 for i, (p, addr) in enumerate(runnable)]
    findings: list[Finding] = list(ev.findings)
    summary = PingSummary(plan.mode, transport, planned=len(plan.pairs), run=len(runnable),
                          excluded=[{"src": _ep(p.src), "dst": _ep(p.dst), "reason": why}
                                    for p, why in plan.excluded])
    pinged = 0
    for outcome in run.fan_out("pings", ping_jobs):
        pair, addr = runnable[int(outcome.job.key)]  # type: ignore[call-overload]
        verdict = evaluate_ping(pair, addr, parse_outcome(outcome), transport)
        pinged += not isinstance(verdict, Skipped)
        if isinstance(verdict, Finding):
            findings.append(verdict)
            summary.failed += 1
        elif isinstance(verdict, Skipped):
            skipped.append(verdict)
    reported = {(f.host, f.device) for f in findings if f.check == "hang"}
    gone = {f.host for f in findings if f.check == "reach"}
    for (host, dev), command in sorted(run.guard.hung.items()):
        if (host, dev) not in reported and host not in gone:
            findings.append(hang_finding(host, dev, command, opts.ping_timeout_s))
    summary.skipped = sum(1 for s in skipped if s.check == "ping")
    evaluated = dict(ev.evaluated)
    evaluated["ping"] = pinged
    return CheckReport(targets.to_dict(), findings, skipped, summary, evaluated,
                       ev.tls_reference, time.monotonic() - start, run.commands,
                       tls_values=dict(ev.tls_values))


def _ep(endpoint: Endpoint) -> dict[str, object]:
    return {"host": endpoint.host, "device": endpoint.device}


def _discover(run: _Run) -> Targets:
    """Flag mode: which devices each host has, and A2 or A3, from ``npu-smi info -m``."""
    targets = run.targets
    jobs = [Job(h.name, smi_commands.info_mapping(run.tools(h.name)[1]), key=h.name,
                timeout=run.options.query_timeout_s) for h in targets.hosts]
    present: dict[str, list[int]] = {}
    socs: list[Soc] = []
    for outcome in run.fan_out("discover", jobs):
        host = outcome.job.host
        if host in run.unreachable:
            continue
        try:
            mapping = parse_smi_outcome(outcome, parse_mapping)
        except AscendPDError as exc:
            run.unreachable[host] = (f"npu-smi info -m failed: {exc.message}",
                                     exc.hint or "check npu-smi on the host")
            continue
        present[host] = list(mapping.phy_ids)
        socs.append(mapping.soc)
    return resolve(targets, present, socs[0] if socs else None)
