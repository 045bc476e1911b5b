"""P/D checks for upstream vLLM deployments (platform cuda / cpu), in ``PLAN_CHECKS``.

The Ascend rules that apply to every platform (ports and side-channel / kv_port ranges per
host, TP x DP vs the host's devices, the same model on P and D) are the common checks of
``render.checks`` and ``spec.checks``; these are the rules of the upstream connectors
themselves (``render.upstream`` traces the facts to vLLM's released sources):

* P2pNcclConnector: only on GPUs, only where the installed vLLM registers it, symmetric TP
  (vLLM 0.23.0 ``docs/design/p2p_nccl_connector.md``, "NCCL Group Topology"), one engine
  per instance, a proxy that speaks its ZMQ contract (vllm-router), and a NIC NCCL can use
  between hosts;
* the storage connector: a shared path, and its class name by vLLM version;
* hybrid DP: what vLLM silently turns into another mode (``arg_utils.py``);
* ``proxy.kind: vllm-router``: rendered for the upstream connectors only.
"""

from __future__ import annotations

from ascend_pd.findings import Finding, at_key
from ascend_pd.render import upstream
from ascend_pd.render.plan import DeploymentPlan
from ascend_pd.render.ports import dp_local
from ascend_pd.spec.models import UPSTREAM_CONNECTORS, ClusterSpec

_DESIGN = "vLLM 0.23.0 docs/design/p2p_nccl_connector.md"


def check_upstream_version(plan: DeploymentPlan) -> list[Finding]:
    """connector.vllm_version is a version, and it has the connector the spec asks for."""
    spec = plan.spec
    connector = spec.connector
    if spec.platform == "ascend" or connector.type not in UPSTREAM_CONNECTORS:
        return []
    version = connector.vllm_version
    if version is not None and upstream.parse(version) is None:
        return [at_key("error", "connector.vllm_version", f"'{version}' is not a version",
                        "write what `pip show vllm` prints on the hosts, e.g. 0.23.0")]
    out: list[Finding] = []
    if connector.type == "p2pnccl":
        status = upstream.p2p_nccl_status(version)
        if status == "removed":
            out.append(at_key(
                "error", "connector.type",
                f"vLLM {version} does not register P2pNcclConnector (it is gone from "
                f"factory.py at {upstream.P2P_NCCL_GONE_IN}; last seen in "
                f"{upstream.P2P_NCCL_SEEN[1]})",
                "use type: nixl, or install a vLLM that has it"))
        elif status == "unknown":
            first, last = upstream.P2P_NCCL_SEEN
            out.append(at_key(
                "warning", "connector.vllm_version",
                f"P2pNcclConnector is registered in vLLM {first} … {last} and gone at "
                f"{upstream.P2P_NCCL_GONE_IN}; "
                + ("the version is not set" if version is None
                   else f"{version} was not checked"),
                "set connector.vllm_version to the vLLM on the hosts (`pip show vllm`)"))
    if connector.type == "storage":
        path = connector.shared_storage_path
        if not path or not path.startswith("/"):
            out.append(at_key(
                "error", "connector.shared_storage_path",
                "the storage connector needs an absolute directory that every prefill and "
                "decode host mounts" + (f" (got '{path}')" if path else ""),
                "set connector.shared_storage_path, e.g. /mnt/kv (NFS or another shared "
                "file system)"))
        if version is None:
            out.append(at_key(
                "warning", "connector.vllm_version",
                f"rendered {upstream.storage_connector(None)}; vLLM before "
                f"{upstream.STORAGE_RENAMED_IN} registers it as SharedStorageConnector",
                "set connector.vllm_version to the vLLM on the hosts (`pip show vllm`)"))
    return out


def _p2p_proxy(spec: ClusterSpec) -> list[Finding]:
    if spec.proxy is None:
        return [at_key("error", "proxy",
                        "P2pNccl instances register with a proxy (kv_connector_extra_config "
                        "proxy_ip / proxy_port) and need one to route requests",
                        "add proxy: {host: <host>, port: 10001, kind: vllm-router}")]
    if spec.proxy.kind == "ascend-pd":
        return [at_key(
            "error", "proxy.kind",
            "ascend-pd's proxy does not speak P2pNccl's contract (ZMQ registration on "
            "connector.p2p_discovery_port, both sides' KV addresses in the request id)",
            "set proxy.kind: vllm-router (it binds --vllm-discovery-address), or run "
            "upstream's disagg_proxy_p2p_nccl_xpyd.py (vLLM 0.23.0 "
            "examples/disaggregated/p2p_nccl_xpyd) on the proxy host")]
    return []


def check_p2p_nccl(plan: DeploymentPlan) -> list[Finding]:
    """What P2pNcclConnector needs: GPUs, symmetric TP, dp 1, its proxy, a real NIC."""
    spec = plan.spec
    if spec.connector.type != "p2pnccl" or spec.platform == "ascend":
        return []
    out: list[Finding] = []
    if spec.platform != "cuda":
        out.append(at_key("error", "connector.type",
                           f"P2pNcclConnector moves KV with NCCL between GPUs, not on "
                           f"platform {spec.platform}", "use type: nixl (or storage)"))
    for role, items in (("prefill", spec.prefill), ("decode", spec.decode)):
        for i, inst in enumerate(items):
            if inst.dp > 1:
                out.append(at_key(
                    "error", f"{role}[{i}].dp",
                    f"dp={inst.dp}: P2pNccl is rendered for one engine per instance "
                    f"(upstream's xPyD scales by instances, {_DESIGN})",
                    "use dp: 1 and add instances instead"))
    tps = {(p.name, d.name, p.tp, d.tp) for p in spec.prefill for d in spec.decode
           if p.tp != d.tp}
    for p_name, d_name, p_tp, d_tp in sorted(tps):
        out.append(at_key(
            "error", "prefill",
            f"prefill '{p_name}' tp={p_tp}, decode '{d_name}' tp={d_tp}: P2pNccl transfers "
            f"KV between equal TP ranks only ({_DESIGN}, NCCL Group Topology)",
            "give prefill and decode the same tp"))
    out.extend(_p2p_proxy(spec))
    p_hosts = {h for inst in spec.prefill for h in inst.hosts}
    d_hosts = {h for inst in spec.decode for h in inst.hosts}
    if p_hosts != d_hosts or len(p_hosts) > 1:
        for i, host in enumerate(spec.hosts):
            if host.nic == "lo" and host.name in p_hosts | d_hosts:
                out.append(at_key(
                    "error", f"hosts[{i}].nic",
                    f"NCCL_SOCKET_IFNAME=lo on '{host.name}': NCCL cannot reach the other "
                    "side's host over loopback",
                    "name the NIC that carries the host's address (`ip -o -4 addr show`)"))
    for key, value in (("kv_buffer_size_prefill", spec.connector.kv_buffer_size_prefill),
                       ("kv_buffer_size_decode", spec.connector.kv_buffer_size_decode)):
        try:
            ok = float(value) > 0
        except ValueError:
            ok = False
        if not ok:
            out.append(at_key("error", f"connector.{key}",
                               f"'{value}' is not a positive number of bytes",
                               "write e.g. 8e9 (what vLLM's float() reads)"))
    return out


def check_hybrid_dp(plan: DeploymentPlan) -> list[Finding]:
    """dp_mode hybrid where vLLM would switch it off or to external LB (arg_utils.py)."""
    out: list[Finding] = []
    for role, items in (("prefill", plan.spec.prefill), ("decode", plan.spec.decode)):
        for i, inst in enumerate(items):
            if inst.dp_mode != "hybrid" or inst.dp <= 1:
                continue
            if len(inst.hosts) == 1:
                out.append(at_key(
                    "warning", f"{role}[{i}].dp_mode",
                    "hybrid DP on one host: vLLM turns hybrid load balancing off when the "
                    "local DP size equals the DP size", "use dp_mode: internal"))
            elif dp_local(inst) == 1:
                out.append(at_key(
                    "warning", f"{role}[{i}].dp_mode",
                    "hybrid DP with one rank per host: vLLM switches to external load "
                    "balancing (one API server per rank)", "use dp_mode: external"))
    return out


def check_router(plan: DeploymentPlan) -> list[Finding]:
    """proxy.kind vllm-router is rendered for upstream vLLM connectors."""
    spec = plan.spec
    if spec.proxy is None or spec.proxy.kind != "vllm-router":
        return []
    if spec.connector.type not in UPSTREAM_CONNECTORS:
        return [at_key("error", "proxy.kind",
                        f"vllm-router is rendered for upstream vLLM's connectors (nixl, "
                        f"p2pnccl), not {spec.connector.type}",
                        "use proxy.kind: ascend-pd")]
    if spec.connector.type == "storage":
        return [at_key("warning", "proxy.kind",
                        "vllm-router's PD mode is written for connectors that return "
                        "kv_transfer_params; the storage connector's prefill returns none",
                        "use proxy.kind: ascend-pd (it runs with --kv-params optional)")]
    return []
