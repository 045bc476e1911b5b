"""Settings of one simulated vLLM server (role, address, latency and fault knobs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["prefill", "decode"]
BadAnswer = Literal["empty", "garbage", "no_done", "huge_header"]
BAD_ANSWERS: tuple[BadAnswer, ...] = ("empty", "garbage", "no_done", "huge_header")


@dataclass(frozen=True)
class SimServerConfig:
    """What ``python -m ascend_pd.simserver`` is told on its command line.

    Attributes:
        role: ``prefill`` (kv_producer) or ``decode`` (kv_consumer).
        host, port: where the HTTP API listens (port 0 picks a free port).
        model: the served model name (``--served-model-name``).
        engine_id: echoed as ``remote_engine_id``; a uuid4 when unset, like vLLM.
        prefill_ms_per_1k: prefill latency per 1000 prompt tokens.
        decode_ms_per_token: latency between generated tokens.
        kv_abort_timeout_s: how long P holds blocks nobody pulled before force-freeing them.
        fail_first: answer the first N completion requests with 503.
        crash_after: serve N completion requests, then exit the process during the next one
            (mid-stream when streaming).
        hang: accept connections but never answer anything (health included).
        error_rate: probability of a 500 per completion request.
        recompute_rate: decode only; probability that a request stops half-way with
            ``stop_reason: "recomputed"`` (as vLLM-Ascend's recompute scheduler does).
        seed: seeds the fault and recompute dice, so runs repeat.
        max_model_len: prompt + max_tokens above this is a 400, like vLLM.
        api_key: like vLLM's ``--api-key``: every ``/v1`` request must carry
            ``Authorization: Bearer <key>``, else 401 ``{"error": "Unauthorized"}``.
        bad_answer: answer completions broken on purpose (what a faulty backend or a
            middlebox can send): ``empty`` (200, no body), ``garbage`` (200, not JSON),
            ``no_done`` (a stream that ends cleanly without ``data: [DONE]``),
            ``huge_header`` (a 100 KiB response header).
        layerwise: behave like vllm-ascend's MooncakeLayerwiseConnector (decode first: D
            posts its blocks to the proxy's metaserver, P pushes the KV; simserver.layerwise).
        no_kv_params: prefill: answer without ``kv_transfer_params`` (a prefill started
            without a KV connector, or with the storage connector); decode: accept a request
            without them (the storage connector's D finds the KV by the prompt).
        prefix_cache_blocks: prefill only; LRU capacity (blocks of 128 tokens) of the prefix
            cache: cached leading blocks of a prompt cost no prefill time (0: no cache).
        compute_lanes: prefill only; prompts computed at once, FIFO (0: unbounded, each
            prefill just sleeps its time).
    """

    role: Role
    host: str = "127.0.0.1"
    port: int = 0
    model: str = "sim-model"
    engine_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    prefill_ms_per_1k: float = 20.0
    decode_ms_per_token: float = 2.0
    kv_abort_timeout_s: float = 480.0
    fail_first: int = 0
    crash_after: int | None = None
    hang: bool = False
    error_rate: float = 0.0
    recompute_rate: float = 0.0
    seed: int = 0
    max_model_len: int = 32768
    tp_size: int = 1
    api_key: str | None = None
    no_kv_params: bool = False
    bad_answer: BadAnswer | None = None
    layerwise: bool = False
    prefix_cache_blocks: int = 4096
    compute_lanes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
