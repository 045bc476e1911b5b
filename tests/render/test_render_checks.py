"""`validate` rejects each P/D inconsistency with a precise message (errors vs warnings)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from ascend_pd.render import build_plan
from ascend_pd.render.checks import check_parallelism, check_proxy
from ascend_pd.spec import ClusterSpec
from ascend_pd.validate import Finding, validate_spec

from .conftest import edited, spec_text

Edit = Callable[[dict[str, Any]], None]


def findings(name: str, edit: Edit) -> list[Finding]:
    return validate_spec(edited(name, edit)).findings


def only(found: list[Finding], severity: str) -> list[str]:
    return [f"{f.key}: {f.message}" for f in found if f.severity == severity]


@pytest.mark.parametrize("name", ["a3-seed", "a2-1p1d-single", "a2-1p1d", "a3-2p1d",
                                  "a2-2p1d-dp", "a2-sim"])
def test_shipped_and_test_specs_are_clean(name: str) -> None:
    assert findings(name, lambda d: None) == []


def _set(path: str, value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        node: Any = data
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


def _both(*edits: Edit) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        for e in edits:
            e(data)
    return edit


CASES: list[tuple[str, str, Edit, str]] = [
    ("served name differs", "a2-1p1d-single",
     _set("decode.0.extra_args", ["--served-model-name", "other"]),
     "decode[0].extra_args: --served-model-name is 'other' here but 'qwen3' on 'prefill-0'"),
    ("kv cache dtype differs", "a2-1p1d-single",
     _set("prefill.0.extra_args", ["--kv-cache-dtype=int8"]),
     "decode[0].extra_args: --kv-cache-dtype is 'auto' here but 'int8' on 'prefill-0'"),
    ("block size differs", "a3-seed", _set("decode.0.extra_args", ["--block-size", "64"]),
     "decode[0].extra_args: --block-size is '64' here but 'default'"),
    ("connector overridden", "a3-seed",
     _set("decode.0.extra_args", ["--kv-transfer-config", "{}"]),
     "decode[0].extra_args: '--kv-transfer-config' is set by the plan from connector"),
    ("P tp below D tp", "a2-1p1d-single", _both(
        _set("model.attention", "mla"), _set("prefill.0.tp", 2), _set("prefill.0.dp", 2)),
     "prefill[0].tp: prefill 'prefill-0' tp=2, decode 'decode-0' tp=4: prefill TP must be "
     ">= decode TP"),
    ("gqa unequal TP", "a2-1p1d-single", _both(_set("decode.0.tp", 2), _set("decode.0.dp", 2)),
     "LLMDataDist needs equal TP for gqa models"),
    ("mooncake P tp not a multiple", "a3-2p1d", _both(
        _set("prefill.0.devices", list(range(12))), _set("prefill.0.tp", 12),
        _set("prefill.0.dp", 1), _set("prefill.1.devices", list(range(12))),
        _set("prefill.1.tp", 12), _set("prefill.1.dp", 1),
        _set("decode.0.tp", 8), _set("decode.0.dp", 4)),
     "prefill 'prefill-0' tp=12, decode 'decode-0' tp=8: P tp must be a multiple of D tp"),
    ("mooncake P sizes differ", "a3-2p1d", _both(_set("prefill.1.tp", 16),
                                                  _set("prefill.1.dp", 1)),
     "prefill: prefill instances differ in tp/dp [(8, 2), (16, 1)]"),
    ("llmdatadist removed", "a3-seed", _set("connector.vllm_ascend_version", "0.12.0"),
     "connector.type: vllm-ascend 0.12.0 has no LLMDataDist connector"),
    ("mooncake too old", "a3-2p1d", _set("connector.vllm_ascend_version", "0.10.0rc1"),
     "connector.type: vllm-ascend 0.10.0rc1 has no Mooncake connector (added in 0.10.1rc1)"),
    ("version unparsable", "a3-seed", _set("connector.vllm_ascend_version", "latest"),
     "connector.vllm_ascend_version: 'latest' is not a vllm-ascend version"),
    ("old RPC env name", "a3-seed", _set("prefill.0.env", {"VLLM_LLMDD_RPC_PORT": "5559"}),
     "prefill[0].env.VLLM_LLMDD_RPC_PORT: vllm-ascend 0.11.0 reads VLLM_ASCEND_LLMDD_RPC_PORT"),
    ("new RPC env name on 0.10.0rc1", "a3-seed", _both(
        _set("connector.vllm_ascend_version", "0.10.0rc1"),
        _set("decode.0.env", {"VLLM_ASCEND_LLMDD_RPC_PORT": "5559"})),
     "decode[0].env.VLLM_ASCEND_LLMDD_RPC_PORT: vllm-ascend 0.10.0rc1 reads VLLM_LLMDD_RPC_PORT"),
    ("three dashes", "a3-seed", _set("prefill.0.extra_args", ["---max-num-batched-tokens", "8"]),
     "prefill[0].extra_args[0]: '---max-num-batched-tokens' has three dashes"),
    ("flag and value in one item", "a3-seed", _set("decode.0.extra_args", ["--max-num-seqs 8"]),
     "decode[0].extra_args[0]: '--max-num-seqs 8' holds a flag and its value in one item"),
    ("line continuation", "a3-seed", _set("decode.0.extra_args", ["--foo", "\\"]),
     "decode[0].extra_args[1]: item '\\\\' is empty or a line continuation"),
    ("single dash long option", "a3-seed", _set("decode.0.extra_args", ["-max-num-seqs", "8"]),
     "decode[0].extra_args[0]: '-max-num-seqs' is a long option with a single dash"),
    ("plan-owned flag", "a3-seed", _set("decode.0.extra_args", ["--tensor-parallel-size", "8"]),
     "decode[0].extra_args: '--tensor-parallel-size' is set by the plan from tp"),
    ("port clash with RPC range", "a2-1p1d-single", _set("proxy.port", 5658),
     "proxy.port: the proxy port (5658 on 'node0') overlaps the LLMDataDist RPC range of "
     "'decode-0' (5657-5660 on 'node0')"),
    ("kv_port in random range", "a3-2p1d", _set("connector.kv_port_base", 30000),
     "connector.kv_port_base: the Mooncake kv_port range of 'prefill-0' (30000-30015 on 'p0') "
     "is inside the transfer engine's random range 20000-35999"),
    ("intra roce disabled on shared host", "a2-1p1d-single",
     _set("decode.0.env", {"HCCL_INTRA_ROCE_ENABLE": "0"}),
     "decode[0].env.HCCL_INTRA_ROCE_ENABLE: is '0' but prefill and decode share a host"),
    ("bad env name", "a3-seed", _set("decode.0.env", {"BAD-NAME": "1"}),
     "decode[0].env: 'BAD-NAME' is not an environment variable name"),
]


@pytest.mark.parametrize(("name", "edit", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_inconsistency_is_an_error(name: str, edit: Edit, message: str) -> None:
    errors = only(findings(name, edit), "error")
    assert any(message in e for e in errors), errors


WARNINGS: list[tuple[str, str, Edit, str]] = [
    ("VLLM_USE_V1 on 0.12", "a3-2p1d", _set("decode.0.env", {"VLLM_USE_V1": "1"}),
     "decode[0].env.VLLM_USE_V1: VLLM_USE_V1 is ignored by vllm-ascend 0.12.0"),
    ("PHYSICAL_DEVICES", "a3-2p1d", _set("hosts.0.env", {"PHYSICAL_DEVICES": "0,1"}),
     "hosts[0].env.PHYSICAL_DEVICES: PHYSICAL_DEVICES is not read"),
    ("use_ascend_direct on 0.12", "a3-2p1d",
     _set("prefill.0.additional_config", {"use_ascend_direct": True}),
     "prefill[0]: use_ascend_direct only applies to Mooncake on 0.11.x (this is 0.12.0)"),
    ("RPC env overrides plan", "a3-seed",
     _set("prefill.0.env", {"VLLM_ASCEND_LLMDD_RPC_PORT": "6000"}),
     "prefill[0].env.VLLM_ASCEND_LLMDD_RPC_PORT: overrides the port plan"),
    ("no P-side expiry", "a3-seed", _both(_set("connector.vllm_ascend_version", "0.10.1rc1"),
                                          _set("connector.abort_request_timeout_s", 300)),
     "connector.abort_request_timeout_s: vllm-ascend 0.10.1rc1 has no P-side KV expiry"),
]


@pytest.mark.parametrize(("name", "edit", "message"), [c[1:] for c in WARNINGS],
                         ids=[c[0] for c in WARNINGS])
def test_stale_setting_is_a_warning(name: str, edit: Edit, message: str) -> None:
    found = findings(name, edit)
    assert any(message in w for w in only(found, "warning")), found
    assert only(found, "error") == []


def test_tp_spanning_hosts_is_rejected_for_llmdatadist() -> None:
    # The spec loader already refuses this shape; the P/D check states the real reason.
    data = yaml.safe_load(spec_text("a2-1p1d"))
    data["prefill"][0].update(hosts=["node-p", "node-d"], devices=[0, 1, 2, 3], tp=8)
    data["decode"][0].update(hosts=["node-p", "node-d"], devices=[4, 5, 6, 7], tp=8)
    spec = ClusterSpec.model_validate(data)
    messages = [f.message for f in check_parallelism(build_plan(spec))]
    assert "tp=8 spans hosts (4 devices per host); LLMDataDist keeps a TP group inside one " \
           "host" in messages


def test_proxy_must_target_only_api_servers() -> None:
    plan = build_plan(edited("a2-2p1d-dp", lambda d: None))
    assert plan.proxy is not None
    assert check_proxy(plan) == []
    # What the upstream README did: point the proxy at the headless second P host.
    bad = dataclasses.replace(plan.proxy, prefill=["192.0.2.42:8100"])
    plan.proxy = bad
    [finding] = check_proxy(plan)
    assert finding.severity == "error"
    assert "prefill target 192.0.2.42:8100 has no API server" in finding.message


def test_missing_proxy_is_a_warning() -> None:
    found = findings("a3-seed", lambda d: d.pop("proxy"))
    assert [(f.severity, f.key) for f in found] == [("warning", "proxy")]
