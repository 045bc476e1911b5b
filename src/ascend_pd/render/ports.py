"""The full port plan of a deployment: every listener on every host, as ranges.

Listeners per instance:

* the API port (DP head host only) and the DP RPC port (head host, dp > 1);
* LLMDataDist: each worker binds ``VLLM_ASCEND_LLMDD_RPC_PORT + local_dp_rank*tp + tp_rank``,
  so an instance holds ``[base, base + dp_local*tp)`` on each of its hosts;
* Mooncake: each worker binds ``kv_port + global_dp_rank*tp + tp_rank``, so a host running DP
  ranks ``[start, start + dp_local)`` holds ``[kv_port + start*tp, kv_port + (start+dp_local)*tp)``;
* MooncakeConnectorV2 (0.30.0rc1+) also binds a scheduler control port per DP rank at
  ``kv_port + dp*pp*pcp*tp + dp_rank`` (vllm-ascend v0.30.0rc2
  ``vllm_ascend/distributed/kv_transfer/kv_p2p/mooncake/base_scheduler.py:78-82``; pp = pcp = 1
  here), right after the instance's worker range.
* NIXL (upstream vLLM): the handshake listener binds ``VLLM_NIXL_SIDE_CHANNEL_PORT + dp_rank``
  (vllm 0.32 ``nixl/base_scheduler.py``), so that host holds ``[kv_port + start, + dp_local)``.
* P2pNccl (upstream vLLM <= 0.23): worker ``r`` binds its ZMQ socket on ``kv_port + r`` (vLLM
  0.23.0 ``p2p/p2p_nccl_engine.py:91``): one port per (DP rank, TP rank), like Mooncake; the
  proxy host also listens for the instances' registrations (``connector.p2p_discovery_port``).
  The storage connector listens on nothing.
* Hybrid DP (``--data-parallel-hybrid-lb``): every host of the instance serves the API port.

Instances get bases ``stride`` apart (a multiple of 100, like the reference recipes' 5559/5659
and 36000/36100/36200), so instances sharing a host never overlap. Mooncake's transfer engine
also picks random ports in ``[20000, 20000 + npus*1000)``; kv ranges must stay clear of it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Final

from ascend_pd.render.router import ROUTER_METRICS_PORT
from ascend_pd.spec.models import ClusterSpec, HostSpec, InstanceSpec

log = logging.getLogger(__name__)

RANDOM_RANGE_START: Final[int] = 20000
#: the connector with per-DP-rank scheduler control ports (see the module docstring)
CONTROL_PORT_CONNECTOR: Final[str] = "MooncakeConnectorV2"
#: what the per-instance range above connector.kv_port_base is, per connector.
KV_RANGE: Final[dict[str, str]] = {"mooncake": "Mooncake kv_port",
                                   "nixl": "NIXL side-channel port",
                                   "p2pnccl": "P2pNccl kv_port"}
_NPUS_PER_HOST: Final[dict[str, int]] = {"a2": 8, "a3": 16}


@dataclass(frozen=True)
class PortClaim:
    """A half-open port range ``[start, end)`` one process listens on, on one host."""

    host: str
    start: int
    end: int
    what: str
    #: the spec key a user changes to move it
    key: str
    #: the launch unit (``<instance>@<host>`` or ``proxy@<host>``) whose process opens it
    unit: str

    def overlaps(self, other: PortClaim) -> bool:
        return self.host == other.host and self.start < other.end and other.start < self.end

    def ports(self) -> range:
        return range(self.start, self.end)

    def label(self) -> str:
        span = str(self.start) if self.end == self.start + 1 else f"{self.start}-{self.end - 1}"
        return f"{self.what} ({span} on '{self.host}')"


@dataclass(frozen=True)
class InstancePorts:
    """The ports of one instance (the same numbers on every host it runs on)."""

    api: int
    dp_rpc: int | None
    #: LLMDataDist metadata RPC base (VLLM_ASCEND_LLMDD_RPC_PORT), else None
    rpc_base: int | None
    #: Mooncake kv_port (handshake base) or NIXL side-channel base, else None
    kv_port: int | None


@dataclass
class PortPlan:
    """Every port claim of the deployment, plus the per-instance numbers."""

    instances: dict[str, InstancePorts] = field(default_factory=dict)
    claims: list[PortClaim] = field(default_factory=list)
    proxy: int | None = None

    def clashes(self) -> list[tuple[PortClaim, PortClaim]]:
        """Pairs of claims that overlap on the same host (first claim first)."""
        out: list[tuple[PortClaim, PortClaim]] = []
        for i, first in enumerate(self.claims):
            out.extend((first, second) for second in self.claims[i + 1:]
                       if first.overlaps(second))
        return out

    def owners(self, host: str) -> dict[int, tuple[str, str]]:
        """Every port planned on ``host``: port -> (what listens there, the unit opening it).

        Ranges (LLMDataDist RPC, Mooncake kv_port) are listed port by port: each worker binds
        one of them, and any one taken makes that worker fail at start.
        """
        return {port: (claim.what, claim.unit) for claim in self.claims if claim.host == host
                for port in claim.ports()}

    def to_dict(self) -> dict[str, object]:
        return {
            "instances": {name: asdict(p) for name, p in self.instances.items()},
            "proxy": self.proxy,
            "claims": [asdict(c) for c in self.claims],
        }


def stride(width: int) -> int:
    """Distance between two instances' bases: ``width`` rounded up to a multiple of 100."""
    return max(100, -(-width // 100) * 100)


def npus_per_host(spec: ClusterSpec, host: HostSpec) -> int:
    """NPUs the transfer engine counts on ``host`` (hardware default or more if listed)."""
    return max(_NPUS_PER_HOST[spec.hardware], len(host.devices))


def random_range(spec: ClusterSpec, host: HostSpec) -> tuple[int, int]:
    """AscendDirectTransport's random port range ``[20000, 20000 + npus*1000)`` on ``host``."""
    return RANDOM_RANGE_START, RANDOM_RANGE_START + npus_per_host(spec, host) * 1000


def dp_local(inst: InstanceSpec) -> int:
    """DP ranks per host of ``inst`` (DP is split evenly over its hosts)."""
    return max(1, inst.dp // len(inst.hosts))


def plan_ports(spec: ClusterSpec) -> PortPlan:
    """Compute every listener of ``spec``; clashes are reported, never silently moved.

    Called once per command, by :func:`ascend_pd.render.plan.build_plan` (the debug log line
    lets a test count it).
    """
    log.debug("planning the ports of '%s'", spec.name)
    plan = PortPlan()
    llmdd = spec.connector.type == "llmdatadist"
    control = not llmdd and spec.connector.mooncake_connector == CONTROL_PORT_CONNECTOR
    rpc_next = spec.connector.rpc_port_base
    kv_next = spec.connector.kv_port_base
    for role, instances in (("prefill", spec.prefill), ("decode", spec.decode)):
        for i, inst in enumerate(instances):
            key = f"{role}[{i}]"
            local = dp_local(inst)
            rpc_base = kv_port = None
            if llmdd:
                rpc_base, rpc_next = rpc_next, rpc_next + stride(local * inst.tp)
            elif spec.connector.type in KV_RANGE:
                width = inst.dp * inst.tp + (inst.dp if control else 0)
                kv_port, kv_next = kv_next, kv_next + stride(width)
            ports = InstancePorts(api=inst.port, dp_rpc=inst.dp_rpc_port if inst.dp > 1 else None,
                                  rpc_base=rpc_base, kv_port=kv_port)
            plan.instances[inst.name] = ports
            external = inst.dp_mode == "external" and inst.dp > 1
            head_unit = f"{inst.name}-dp0@{inst.head}" if external else f"{inst.name}@{inst.head}"
            if external:
                plan.claims.extend(
                    PortClaim(host, inst.port + i, inst.port + i + 1,
                              f"the API port of '{inst.name}' DP rank {j * local + i}",
                              f"{key}.port", f"{inst.name}-dp{j * local + i}@{host}")
                    for j, host in enumerate(inst.hosts) for i in range(local))
            else:
                # Hybrid DP: each host serves the API for its own ranks.
                api_hosts = (inst.hosts if inst.dp_mode == "hybrid" and inst.dp > 1
                             else [inst.head])
                plan.claims.extend(PortClaim(host, inst.port, inst.port + 1,
                                             f"the API port of '{inst.name}'", f"{key}.port",
                                             f"{inst.name}@{host}") for host in api_hosts)
            if ports.dp_rpc is not None:
                plan.claims.append(PortClaim(inst.head, ports.dp_rpc, ports.dp_rpc + 1,
                                             f"the DP RPC port of '{inst.name}'",
                                             f"{key}.dp_rpc_port", head_unit))
            for j, host in enumerate(inst.hosts):
                units = ([f"{inst.name}-dp{j * local + i}@{host}" for i in range(local)]
                         if external else [f"{inst.name}@{host}"])
                width = local * inst.tp // len(units)
                # Mooncake: one kv port per (DP rank, TP rank); NIXL: one per DP rank.
                per_rank = 1 if spec.connector.type == "nixl" else inst.tp
                kv_width = local * per_rank // len(units)
                for u, unit in enumerate(units):
                    if rpc_base is not None:
                        first = rpc_base + u * width
                        plan.claims.append(PortClaim(
                            host, first, first + width,
                            f"the LLMDataDist RPC range of '{inst.name}'",
                            "connector.rpc_port_base", unit))
                    if kv_port is not None:
                        first = kv_port + j * local * per_rank + u * kv_width
                        plan.claims.append(PortClaim(
                            host, first, first + kv_width,
                            f"the {KV_RANGE[spec.connector.type]} range of '{inst.name}'",
                            "connector.kv_port_base", unit))
                if kv_port is not None and control:
                    first = kv_port + inst.dp * inst.tp + j * local
                    plan.claims.append(PortClaim(
                        host, first, first + local,
                        f"the Mooncake control ports of '{inst.name}'", "connector.kv_port_base",
                        units[0]))
    if spec.proxy is not None:
        plan.proxy = spec.proxy.port
        plan.claims.append(PortClaim(spec.proxy.host, spec.proxy.port, spec.proxy.port + 1,
                                     "the proxy port", "proxy.port", f"proxy@{spec.proxy.host}"))
        if spec.proxy.kind == "vllm-router":
            # vllm-router opens its Prometheus listener by default.
            plan.claims.append(PortClaim(spec.proxy.host, ROUTER_METRICS_PORT,
                                         ROUTER_METRICS_PORT + 1,
                                         "vllm-router's Prometheus port", "proxy.host",
                                         f"proxy@{spec.proxy.host}"))
        if spec.connector.type == "p2pnccl":
            port = spec.connector.p2p_discovery_port
            plan.claims.append(PortClaim(spec.proxy.host, port, port + 1,
                                         "the P2pNccl discovery port",
                                         "connector.p2p_discovery_port",
                                         f"proxy@{spec.proxy.host}"))
    return plan
