"""Kubernetes-specific validation rules, over the one deployment plan.

Each rule is ``(plan) -> list[Finding]`` like :data:`ascend_pd.render.checks.PLAN_CHECKS`;
:data:`K8S_CHECKS` lists them. ``render --target k8s`` runs them after the P/D checks
(errors block the render), and ``validate --target k8s`` prints them.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Final

from ascend_pd.findings import Finding, at_key
from ascend_pd.k8s.model import KNOWN_NPU_RESOURCES
from ascend_pd.k8s.pods import host_network
from ascend_pd.render.checks import Check, run_checks
from ascend_pd.render.checks import _instances as instance_keys
from ascend_pd.render.plan import DeploymentPlan
from ascend_pd.render.ports import RANDOM_RANGE_START, PortClaim

#: NPUs one node of each hardware generation offers the device plugin
NODE_NPUS: Final[dict[str, int]] = {"a2": 8, "a3": 16}
#: below this, a large model's weights rarely finish loading (and graphs capturing)
MIN_STARTUP_BUDGET_S: Final[int] = 900


def _keys(plan: DeploymentPlan) -> dict[str, str]:
    """Instance name -> its spec key (``prefill[0]``), as the P/D checks name them."""
    return {inst.name: key for key, inst in instance_keys(plan.spec)}


def check_kv_port_range(plan: DeploymentPlan) -> list[Finding]:
    """Mooncake kv_port ranges clear of the transfer engine's random range on any node.

    Pods land on whichever node the scheduler picks, so the range is the hardware's full
    node (``[20000, 20000 + 1000 × NPUs)``), not the listed hosts'.
    """
    spec = plan.spec
    if spec.connector.type != "mooncake":
        return []
    high = RANDOM_RANGE_START + NODE_NPUS[spec.hardware] * 1000
    out = []
    for claim in plan.ports.claims:
        if "Mooncake" in claim.what and claim.start < high and claim.end > RANDOM_RANGE_START:
            out.append(at_key(
                "warning", claim.key,
                f"{claim.label()} overlaps the reserved range {RANDOM_RANGE_START}-{high - 1} "
                f"that AscendDirectTransport draws random ports from on a {spec.hardware} node",
                f"set connector.kv_port_base >= {high}"))
    return out


def check_npus(plan: DeploymentPlan) -> list[Finding]:
    """The NPU resource is one the device plugins advertise.

    The node-count rule of the issue (pods that no node set can hold) is already an error
    of the spec itself: every instance's devices are listed per host and tp × dp must
    equal hosts × devices, so each pod's request is TP × local DP and fits its node.
    """
    name = plan.spec.k8s.npu_resource
    if name in KNOWN_NPU_RESOURCES:
        return []
    return [at_key("warning", "k8s.npu_resource",
                    f"'{name}' is not a name the Ascend device plugins advertise "
                    f"({', '.join(KNOWN_NPU_RESOURCES)})",
                    "check the node's allocatable resources (`kubectl describe node`)")]


def check_workload(plan: DeploymentPlan) -> list[Finding]:
    """A pod is one host's share of an instance (one process): an instance spanning hosts
    needs an LWS, and external DP (one server per rank on a host) is not rendered."""
    keys = _keys(plan)
    out = [at_key("error", f"{keys[inst.name]}.dp_mode",
                   f"'{inst.name}' uses dp_mode: external (one API server per DP rank); the "
                   "k8s target renders one server process per pod",
                   "use dp_mode: internal for the k8s target")
           for _, inst in plan.spec.instances if inst.dp_mode == "external" and inst.dp > 1]
    out += [at_key("error", f"{keys[inst.name]}.dp_mode",
                   f"'{inst.name}' uses dp_mode: hybrid (an API server on every host); the "
                   "k8s target serves an instance from its leader pod only",
                   "use dp_mode: internal for the k8s target")
            for _, inst in plan.spec.instances if inst.dp_mode == "hybrid"]
    if plan.spec.k8s.workload == "statefulset":
        out += [at_key("error", "k8s.workload",
                        f"'{inst.name}' ({keys[inst.name]}) spans {len(inst.hosts)} hosts; a "
                        "StatefulSet pod cannot hold a DP head and its headless ranks",
                        "use workload: auto (a LeaderWorkerSet for multi-host instances)")
                for _, inst in plan.spec.instances if len(inst.hosts) > 1]
    return out


def check_probes(plan: DeploymentPlan) -> list[Finding]:
    """Probes present and the startup budget long enough for weight loading."""
    probes = plan.spec.k8s.probes
    if not probes.enabled:
        return [at_key("warning", "k8s.probes.enabled",
                        "no startup/readiness/liveness probes: a hung server keeps its pod, "
                        "and the proxy's DNS lists pods before they can serve",
                        "remove enabled: false")]
    if probes.startup_budget_s < MIN_STARTUP_BUDGET_S:
        return [at_key("warning", "k8s.probes.startup_budget_s",
                        f"{probes.startup_budget_s} s to load weights; large models take "
                        "longer and the kubelet restarts the pod in a loop",
                        f"use >= {MIN_STARTUP_BUDGET_S}")]
    return []


def check_proxy_kind(plan: DeploymentPlan) -> list[Finding]:
    """The k8s target renders our proxy (it follows the pods through DNS); vllm-router is
    rendered for SSH hosts only."""
    proxy = plan.spec.proxy
    if proxy is None or proxy.kind == "ascend-pd":
        return []
    return [at_key("error", "proxy.kind",
                   f"proxy.kind: {proxy.kind} is not rendered for the k8s target (its proxy "
                   "Deployment runs ascend-pd proxy with DNS discovery of the pods)",
                   "use proxy.kind: ascend-pd with --target k8s, or run vllm-router yourself "
                   "against the headless Services (docs/cuda.md)")]


def _instance_claims(plan: DeploymentPlan) -> dict[str, list[PortClaim]]:
    out: dict[str, list[PortClaim]] = defaultdict(list)
    for claim in plan.ports.claims:
        name, _, _ = claim.unit.partition("@")
        if name != "proxy":
            out[name].append(claim)
    return out


def check_host_network_ports(plan: DeploymentPlan) -> list[Finding]:
    """With hostNetwork, two pods that may share a node must not share a port.

    Pinned pods share a node only where the plan says (the P/D port check covers that).
    Unpinned, any two instances whose NPUs fit one node together may be placed there.
    """
    spec = plan.spec
    k8s = spec.k8s
    pinned = k8s.pin_nodes if k8s.pin_nodes is not None else spec.connector.type == "llmdatadist"
    if not host_network(spec, k8s) or pinned:
        return []
    node = NODE_NPUS[spec.hardware]
    npus = {p.instance: len(p.devices) for p in plan.processes}
    claims = _instance_claims(plan)
    out = []
    for a, b in combinations(claims, 2):
        if npus[a] + npus[b] > node:
            continue
        for first in claims[a]:
            for second in claims[b]:
                if first.start < second.end and second.start < first.end:
                    out.append(at_key(
                        "error", second.key,
                        f"with hostNetwork, {second.what} ({second.start}-{second.end - 1}) "
                        f"clashes with {first.what} ({first.start}-{first.end - 1}) when both "
                        "pods land on one node",
                        "give them distinct ports, or set k8s.pin_nodes: true"))
    return out


K8S_CHECKS: Final[tuple[Check, ...]] = (
    check_kv_port_range, check_npus, check_workload, check_probes, check_host_network_ports,
    check_proxy_kind,
)


def k8s_findings(plan: DeploymentPlan) -> list[Finding]:
    """Every finding of :data:`K8S_CHECKS` over ``plan``."""
    return run_checks(plan, K8S_CHECKS)
