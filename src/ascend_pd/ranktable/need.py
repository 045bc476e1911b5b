"""Does the spec's deployment read a rank table at all?

Only vllm-ascend's LLMDataDist connector reads ``ranktable.json``
(``DISAGGREGATED_PREFILL_RANK_TABLE_PATH``), and only the releases whose harvested facts say
``reads_ranktable`` ship it (0.9.1rc2 … 0.11.0; LLMDataDist was removed in 0.12.0rc1). Mooncake
exchanges KV addresses over its own kv_port handshake and upstream vLLM's connectors never
read an HCCL file. ``gen-ranktable`` prints the answer as a warning (the table is still
written: a site may keep one for other tools), and the demo skips the step on it.
"""

from __future__ import annotations

from ascend_pd.errors import SpecError
from ascend_pd.findings import Finding, at_key
from ascend_pd.releases import load, resolve
from ascend_pd.spec.models import ClusterSpec


def _readers() -> str:
    """The known releases that read a rank table, as "first … last" (from the data)."""
    versions = [r.version for r in load().releases if r.reads_ranktable]
    return f"{versions[0]} … {versions[-1]}" if versions else "none"


def ranktable_unused(spec: ClusterSpec) -> Finding | None:
    """A warning when no process of ``spec`` reads a rank table, else None.

    A version that cannot be resolved gives None: validate and render report that error.
    """
    try:
        facts = resolve(spec.connector.vllm_ascend_version).facts
    except SpecError:
        return None
    kind = spec.connector.type
    skip = (f"skip gen-ranktable for this spec: only LLMDataDist reads a rank table "
            f"(vllm-ascend {_readers()})")
    if kind == "llmdatadist":
        if facts.reads_ranktable:
            return None
        return at_key(
            "warning", check="ranktable-unused", key="connector.vllm_ascend_version",
            message=(f"vllm-ascend {spec.connector.vllm_ascend_version} reads no rank table: "
                     "its releases have no LLMDataDist connector (removed in 0.12.0rc1)"),
            hint=("use connector.type: mooncake (MooncakeConnectorV1 needs no rank table), "
                  f"or set the release the hosts really run; {skip}"))
    name = spec.connector.mooncake_connector if kind == "mooncake" else kind
    how = ("it exchanges KV addresses over its kv_port handshake" if kind == "mooncake"
           else "it is not an HCCL connector")
    return at_key(
        "warning", check="ranktable-unused", key="connector.type",
        message=f"connector {name} ({kind}) reads no rank table: {how}, so "
                "ranktable.json is not used by this deployment",
        hint=skip)
