"""vllm-router's command line in PD mode (``proxy.kind: vllm-router``).

Flags as vllm-project/router defines them (``py_src/vllm_router/router_args.py`` of the
vllm-router 0.1.17 package): ``--vllm-pd-disaggregation`` with one ``--prefill URL`` /
``--decode URL`` per API server, or, for P2pNcclConnector, ``--vllm-discovery-address
HOST:PORT`` where the instances register themselves over ZMQ (vLLM's P2pNccl contract, which
this package's proxy does not speak). The router serves ``/health`` like our proxy, so launch,
status and stop treat it as the same unit. What it does not do (KV drains, SSE error events,
list prompts): docs/cuda.md.
"""

from __future__ import annotations

from typing import Final

from ascend_pd.proxy.config import ProxyConfig
from ascend_pd.spec.models import ClusterSpec

#: our proxy's policy -> the router's: it has no least-loaded policy; power-of-two picks the
#: less loaded of two random workers, the nearest match
ROUTER_POLICY: Final[dict[str, str]] = {
    "least_loaded": "power_of_two", "power_of_two": "power_of_two",
    "round_robin": "round_robin", "cache_aware": "cache_aware",
}
#: the router's Prometheus listener (on by default, 127.0.0.1: the router's CLI reference)
ROUTER_METRICS_PORT: Final[int] = 29000


def _policy(ours: str, servers: int) -> str:
    # "Without service discovery, power_of_two requires at least two workers" for that PD
    # stage (the router's CLI reference): one server gets round_robin, the same pick.
    policy = ROUTER_POLICY[ours]
    return "round_robin" if policy == "power_of_two" and servers < 2 else policy


def router_args(spec: ClusterSpec, config: ProxyConfig) -> list[str]:
    """Arguments after ``vllm-router`` for the proxy settings the plan built (``config``:
    listen address, API servers, policies); ``spec`` says the connector."""
    args = ["--host", config.host, "--port", str(config.port), "--vllm-pd-disaggregation"]
    if spec.connector.type == "p2pnccl":
        # The instances find the router, not the other way round (kv_connector_extra_config
        # proxy_ip / proxy_port): bind the discovery socket where they send.
        args += ["--vllm-discovery-address",
                 f"{config.host}:{spec.connector.p2p_discovery_port}"]
    else:
        for role in ("prefill", "decode"):
            for address in getattr(config, role):
                args += [f"--{role}", address.url]
    args += ["--prefill-policy", _policy(config.policy_prefill, len(config.prefill)),
             "--decode-policy", _policy(config.policy_decode, len(config.decode))]
    return args
