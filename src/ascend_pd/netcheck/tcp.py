"""check-links on ``platform: cuda``: a TCP reachability matrix over the deployment plan.

Upstream vLLM's connectors talk over TCP between the hosts: the decode workers open the
prefill's NIXL side channel (``VLLM_NIXL_SIDE_CHANNEL_HOST:PORT`` + DP rank), P2pNccl peers
connect to each other's kv ports, the proxy calls every API server, and the headless hosts
of a multi-node DP instance call the head's DP RPC port. A firewall between P and D shows up
much later as a hang (``RPC call to sample_tokens timed out``); this finds it before launch.

Who must reach what is read from the plan's port claims (``DeploymentPlan.ports.claims``),
generically by the claim's spec key, never per connector:

* ``<role>[i].port`` (API ports): the proxy host;
* ``<role>[i].dp_rpc_port``: the instance's other hosts;
* ``proxy.*``: nobody here (clients connect to it);
* anything else (``connector.*``: side-channel / kv / RPC ranges): the hosts of the other role.

One probe command per (source, destination) host pair runs on the source through its runner
(``python3 -I -S -c``: stdlib sockets, connects in parallel, each bounded by the timeout);
pairs run in parallel through ``fan_out``. Per port: ``open``, ``closed`` (the host answered
with a reset: reachable, nothing listens yet), ``timeout`` (dropped: a firewall) or
``unreachable`` (no route). ``timeout`` / ``unreachable`` are faults, one per
(source, destination, listener); ``closed`` is a warning per destination (a fault with
``expect_listening``, after launch).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from ascend_pd.errors import ParseError
from ascend_pd.findings import Finding
from ascend_pd.netcheck.report import CheckReport, PingSummary, device_finding
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.fanout import Job, fan_out

if TYPE_CHECKING:
    from ascend_pd.render.plan import DeploymentPlan

Status = Literal["open", "closed", "timeout", "unreachable"]
#: the spec key of an API port claim (``prefill[0].port``)
_API_KEY: Final = re.compile(r"^(prefill|decode)\[\d+\]\.port$")
#: connects one probe process runs at once
_PARALLEL: Final[int] = 32

#: runs on the source host: ``python3 -I -S -c PROBE TIMEOUT ADDR PORT [ADDR PORT ...]``,
#: prints ``ADDR PORT STATUS DETAIL`` per target (stdlib only: any Python 3 will do)
PROBE_SOURCE: Final[str] = r"""
import socket, sys
from concurrent.futures import ThreadPoolExecutor
timeout = float(sys.argv[1])
targets = list(zip(sys.argv[2::2], sys.argv[3::2]))
def probe(target):
    try:
        with socket.create_connection((target[0], int(target[1])), timeout=timeout):
            return "open", "connected"
    except ConnectionRefusedError:
        return "closed", "connection refused"
    except socket.timeout:
        return "timeout", "no answer in %gs" % timeout
    except OSError as exc:
        return "unreachable", exc.strerror or str(exc)
with ThreadPoolExecutor(max_workers=max(1, min(%d, len(targets)))) as pool:
    for (addr, port), (status, detail) in zip(targets, pool.map(probe, targets)):
        print(addr, port, status, detail)
""".replace("%d", str(_PARALLEL))


@dataclass(frozen=True)
class TcpTarget:
    """One listener of the plan: where it is, what it is, who opens it, which key moves it."""

    host: str
    address: str
    port: int
    what: str
    unit: str
    key: str


@dataclass(frozen=True)
class TcpPair:
    """``src`` must reach ``dst``."""

    src: str
    dst: TcpTarget


@dataclass(frozen=True)
class TcpResult:
    """One probed pair."""

    pair: TcpPair
    status: Status | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        dst = self.pair.dst
        return {"src": self.pair.src, "dst": dst.host, "address": dst.address,
                "port": dst.port, "what": dst.what, "unit": dst.unit, "key": dst.key,
                "status": self.status, "detail": self.detail}


@dataclass
class TcpSummary:
    """The matrix as run (``check-links --json``: ``tcp``)."""

    planned: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    results: list[TcpResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "counts": self.counts,
                "pairs": [r.to_dict() for r in self.results]}


def tcp_pairs(plan: DeploymentPlan) -> list[TcpPair]:
    """Every (source host, listener) the deployment needs reachable, from the plan's claims."""
    spec = plan.spec
    role_of = {p.name: p.role for p in plan.processes}
    hosts_of_role: dict[str, list[str]] = {"prefill": [], "decode": []}
    instance_hosts: dict[str, list[str]] = {}
    instance_of = {p.name: p.instance for p in plan.processes}
    for p in plan.processes:
        if p.host not in hosts_of_role[p.role]:
            hosts_of_role[p.role].append(p.host)
        instance_hosts.setdefault(p.instance, [])
        if p.host not in instance_hosts[p.instance]:
            instance_hosts[p.instance].append(p.host)
    pairs: list[TcpPair] = []
    for claim in plan.ports.claims:
        if claim.key.startswith("proxy."):
            continue
        if _API_KEY.match(claim.key):
            sources = [plan.proxy.host] if plan.proxy is not None else []
        elif claim.key.endswith(".dp_rpc_port"):
            sources = instance_hosts.get(instance_of.get(claim.unit, ""), [])
        else:
            role = role_of.get(claim.unit)
            if role is None:
                continue
            sources = hosts_of_role["decode" if role == "prefill" else "prefill"]
        address = spec.host(claim.host).address
        for port in claim.ports():
            target = TcpTarget(claim.host, address, port, claim.what, claim.unit, claim.key)
            pairs.extend(TcpPair(src, target) for src in sources if src != claim.host)
    return pairs


def probe_argv(python: str, timeout_s: float, targets: list[TcpTarget]) -> tuple[str, ...]:
    """The probe command for one source host (addresses and ports as arguments)."""
    args = [x for t in targets for x in (t.address, str(t.port))]
    return (python, "-I", "-S", "-c", PROBE_SOURCE, f"{timeout_s:g}", *args)


def parse_probe_output(text: str) -> dict[tuple[str, int], tuple[Status, str]]:
    """``ADDR PORT STATUS DETAIL`` lines -> {(addr, port): (status, detail)} (pure).

    Raises:
        ParseError: a line that is not one of the probe's (quoting it).
    """
    out: dict[tuple[str, int], tuple[Status, str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(" ", 3)
        if len(parts) < 3 or not parts[1].isdigit() or parts[2] not in (
                "open", "closed", "timeout", "unreachable"):
            raise ParseError("unexpected line from the TCP probe", line=line)
        status: Status = parts[2]  # type: ignore[assignment]
        out[(parts[0], int(parts[1]))] = (status, parts[3] if len(parts) > 3 else "")
    return out


@dataclass(frozen=True)
class TcpOptions:
    """Knobs of one run: connect timeout, fan-out bounds, and whether listeners must exist."""

    connect_timeout_s: float = 3.0
    max_hosts: int = 64
    per_host: int = 8
    #: after launch: a closed port is a fault (the unit should be listening)
    expect_listening: bool = False


def check_tcp(
    plan: DeploymentPlan, runner_for: Callable[[str], CommandRunner], *,
    options: TcpOptions | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> CheckReport:
    """Probe every pair of :func:`tcp_pairs` from its source host; findings per failure.

    Returns:
        A check-links report (``tcp`` set, no devices); an unreachable source host is one
        ``reach`` finding, never an exception.
    """
    opts = options or TcpOptions()
    start = time.monotonic()
    pairs = tcp_pairs(plan)
    groups: dict[tuple[str, str], list[TcpPair]] = {}
    for pair in pairs:
        groups.setdefault((pair.src, pair.dst.host), []).append(pair)
    jobs = []
    for (src, dst), members in groups.items():
        python = plan.spec.host(src).env.get("ASCEND_PD_PYTHON", "python3")
        rounds = -(-len(members) // _PARALLEL)
        jobs.append(Job(src, probe_argv(python, opts.connect_timeout_s, [m.dst for m in members]),
                        key=(src, dst), timeout=rounds * opts.connect_timeout_s + 15.0))

    def done(_outcome: object, n: int, total: int) -> None:
        if on_progress is not None:
            on_progress("tcp", n, total)

    findings: list[Finding] = []
    summary = TcpSummary(planned=len(pairs))
    reach_reported: set[str] = set()
    for outcome in fan_out(jobs, runner_for, max_hosts=opts.max_hosts, per_host=opts.per_host,
                           on_done=done, retry_if=lambda _r: False):
        src, dst = outcome.job.key  # type: ignore[misc]
        members = groups[(src, dst)]
        results, finding = _results(outcome, members)
        if finding is not None and (finding.check != "reach" or src not in reach_reported):
            findings.append(finding)
            if finding.check == "reach":
                reach_reported.add(src)
        summary.results.extend(results)
    for result in summary.results:
        key = result.status or "not run"
        summary.counts[key] = summary.counts.get(key, 0) + 1
    findings.extend(_findings(plan, summary.results, opts))
    hosts = [{"name": h.name, "address": h.address, "devices": [],
              "roles": sorted({p.role for p in plan.processes if p.host == h.name})}
             for h in plan.spec.hosts]
    failed = sum(1 for r in summary.results if r.status in ("timeout", "unreachable"))
    ran = sum(1 for r in summary.results if r.status is not None)
    report = CheckReport(
        {"source": "spec", "soc": None, "platform": plan.spec.platform, "hosts": hosts},
        findings, [], PingSummary("tcp", "tcp", planned=len(pairs), run=ran, failed=failed),
        {"tcp": ran, "reach": len({j.host for j in jobs})}, None, time.monotonic() - start,
        {"tcp": {j.host: sum(1 for x in jobs if x.host == j.host) for j in jobs}},
        tcp=summary)
    return report


def _results(outcome: Any, members: list[TcpPair]) -> tuple[list[TcpResult], Finding | None]:
    src = outcome.job.host
    if outcome.error is not None:
        err = outcome.error
        return ([TcpResult(m, None, f"not run: {err.message}") for m in members],
                device_finding(host=src, device=None, check="reach",
                               observed=err.message, expected="reachable through its runner (SSH)",
                        fix=err.hint or "check that the host is up and reachable over SSH"))
    result = outcome.result
    why = ""
    if result.failed:
        tail = result.tail("stderr", 2) or result.tail("stdout", 2)
        why = f"the probe exited {result.exit_code}: {tail}"
    else:
        try:
            seen = parse_probe_output(result.stdout)
        except ParseError as exc:
            why = f"{exc.message}: {exc.line}"
        else:
            return ([TcpResult(m, *seen.get((m.dst.address, m.dst.port),
                                            (None, "no answer from the probe")))
                     for m in members], None)
    return ([TcpResult(m, None, why) for m in members],
            device_finding(host=src, device=None, check="tcp", observed=why,
                    expected="the TCP probe runs (python3 on the host)",
                    fix="Install python3 on the host, or set ASCEND_PD_PYTHON in hosts[].env."))


def _ports(results: list[TcpResult]) -> str:
    ports = sorted({r.pair.dst.port for r in results})
    if len(ports) > 2 and ports[-1] - ports[0] == len(ports) - 1:
        return f"{ports[0]}-{ports[-1]}"
    return ", ".join(map(str, ports))


def _findings(plan: DeploymentPlan, results: list[TcpResult], opts: TcpOptions) -> list[Finding]:
    out: list[Finding] = []
    failing: dict[tuple[str, str, str], list[TcpResult]] = {}
    closed: dict[tuple[str, str], list[TcpResult]] = {}
    for r in results:
        dst = r.pair.dst
        if r.status in ("timeout", "unreachable"):
            failing.setdefault((r.pair.src, dst.host, dst.what), []).append(r)
        elif r.status == "closed":
            closed.setdefault((dst.host, dst.what), []).append(r)
    for (src, host, what), group in failing.items():
        dst = group[0].pair.dst
        src_addr = plan.spec.host(src).address
        statuses = {r.status for r in group}
        if statuses == {"unreachable"}:
            fix = (f"No route from {src} to {dst.address} ({group[0].detail}): check "
                   f"`ip route get {dst.address}` on {src} and that hosts[].nic "
                   f"({plan.spec.host(src).nic}) is the interface the peers share.")
        else:
            fix = (f"Something drops the connection: open TCP {_ports(group)} on {host} for "
                   f"{src_addr} (host firewall, security group, switch ACL), then re-run "
                   "`ascend-pd check-links`; the connector hangs on it otherwise "
                   "(`ascend-pd diagnose` names it `engine-stuck-collective`).")
        out.append(device_finding(
            host=src, device=None, check="tcp",
            observed=f"{host} {dst.address}:{_ports(group)} ({what}): {group[0].detail}",
            expected=f"{src} reaches {dst.address}:{_ports(group)} (opened by {dst.unit}; "
                     f"moved with {dst.key})", fix=fix))
    for (host, what), group in closed.items():
        dst = group[0].pair.dst
        sources = sorted({r.pair.src for r in group})
        out.append(device_finding(
            host=host, device=None, check="tcp", warning=not opts.expect_listening,
            observed=f"nothing listens on {dst.address}:{_ports(group)} ({what}); "
                     f"{', '.join(sources)} reached the host (connection refused)",
            expected=(f"{dst.unit} listening" if opts.expect_listening
                      else "reachable (a closed port is expected before launch)"),
            fix=(f"Start the deployment (`ascend-pd launch`), then `ascend-pd check-links "
                 f"--after-launch`; if {dst.unit} runs, it is bound elsewhere "
                 f"(`ss -ltnp` on {host}). A firewall REJECT rule also answers 'refused'.")))
    return out
