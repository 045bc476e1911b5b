"""The deployment plan: versions, DP layout, environment, kv-transfer-config and ports."""

from __future__ import annotations

from typing import Any

import pytest

from ascend_pd.errors import SpecError
from ascend_pd.render import Version, build_plan, plan_ports
from ascend_pd.render.versions import abort_timeout_env, connector_supported, rpc_port_env

from .conftest import edited, load


def test_versions_order_release_candidates_first() -> None:
    chain = ["0.9.1rc2", "v0.9.1", "0.10.0rc1", "0.10.1rc1", "0.10.1", "0.11.0rc0",
             "0.11.0rc1", "0.11.0", "0.12.0rc1"]
    assert sorted(chain, key=Version) == chain
    assert Version("v0.11.0") == Version("0.11.0") == "0.11.0"
    with pytest.raises(SpecError, match=r"not MAJOR\.MINOR"):
        Version("latest")


@pytest.mark.parametrize(("version", "name"), [
    ("0.9.1", "VLLM_LLMDD_RPC_PORT"), ("0.10.0rc1", "VLLM_LLMDD_RPC_PORT"),
    ("0.10.1rc1", "VLLM_ASCEND_LLMDD_RPC_PORT"), ("0.11.0", "VLLM_ASCEND_LLMDD_RPC_PORT"),
])
def test_rpc_port_variable_follows_the_rename(version: str, name: str) -> None:
    assert rpc_port_env(Version(version)) == name


def test_connector_support_and_abort_variables() -> None:
    assert connector_supported("llmdatadist", Version("0.11.0"))
    assert not connector_supported("llmdatadist", Version("0.12.0rc1"))
    assert not connector_supported("mooncake", Version("0.10.0rc1"))
    assert abort_timeout_env("llmdatadist", Version("0.9.1")) == (
        "VLLM_LLMDD_ABORT_REQUEST_TIMEOUT", 120)
    assert abort_timeout_env("llmdatadist", Version("0.10.2rc1")) is None
    assert abort_timeout_env("llmdatadist", Version("0.11.0"))[0] == (  # type: ignore[index]
        "VLLM_NIXL_ABORT_REQUEST_TIMEOUT")


def test_multi_node_dp_layout() -> None:
    plan = build_plan(load("a2-2p1d-dp"))
    layout = [(p.name, p.serving, p.dp_size_local, p.dp_start_rank) for p in plan.processes]
    assert layout == [
        ("prefill-0@p0a", "api", 1, 0), ("prefill-0@p0b", "headless", 1, 1),
        ("prefill-1@p1a", "api", 1, 0), ("prefill-1@p1b", "headless", 1, 1),
        ("decode-0@d0a", "api", 2, 0), ("decode-0@d0b", "headless", 2, 2),
    ]
    d0b = plan.processes[-1]
    assert d0b.argv[d0b.argv.index("--data-parallel-address") + 1] == "192.0.2.45"
    assert "--headless" in d0b.argv
    assert d0b.api_port is None
    assert d0b.env["GLOO_SOCKET_IFNAME"] == "eth1"
    assert d0b.env["HCCL_BUFFSIZE"] == "600"
    assert plan.proxy is not None
    assert plan.proxy.prefill == ["192.0.2.41:8100", "192.0.2.43:8100"]
    assert plan.proxy.decode == ["192.0.2.45:8200"]


def test_single_host_1p1d_gets_disjoint_rpc_ranges_and_intra_roce() -> None:
    plan = build_plan(load("a2-1p1d-single"))
    prefill, decode = plan.processes
    assert prefill.env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1,2,3"
    assert decode.env["ASCEND_RT_VISIBLE_DEVICES"] == "4,5,6,7"
    assert prefill.env["VLLM_ASCEND_LLMDD_RPC_PORT"] == "5557"
    assert decode.env["VLLM_ASCEND_LLMDD_RPC_PORT"] == "5657"
    assert prefill.env["HCCL_INTRA_ROCE_ENABLE"] == decode.env["HCCL_INTRA_ROCE_ENABLE"] == "1"
    ranges = [(c.start, c.end) for c in plan.ports.claims if "LLMDataDist" in c.what]
    assert ranges == [(5557, 5561), (5657, 5661)]
    assert not plan.ports.clashes()


def test_separate_hosts_do_not_enable_intra_roce() -> None:
    plan = build_plan(load("a3-seed"))
    assert all("HCCL_INTRA_ROCE_ENABLE" not in p.env for p in plan.processes)
    assert all(p.env["VLLM_HOST_IP"] == p.env["HCCL_IF_IP"] == p.address for p in plan.processes)


def test_llmdatadist_kv_config() -> None:
    plan = build_plan(load("a3-seed"))
    configs = [p.kv_transfer_config for p in plan.processes]
    assert [c["kv_role"] for c in configs] == ["kv_producer", "kv_consumer"]
    assert all(c["kv_connector"] == "LLMDataDistCMgrConnector" for c in configs)
    assert all(c["kv_buffer_device"] == "npu" for c in configs)
    assert all("kv_connector_module_path" not in c for c in configs)


def test_mooncake_kv_config_and_ports() -> None:
    plan = build_plan(load("a3-2p1d"))
    by_name = {p.name: p for p in plan.processes}
    kv_ports = {p.instance: p.kv_transfer_config["kv_port"] for p in plan.processes}
    assert kv_ports == {"prefill-0": "36000", "prefill-1": "36100", "decode-0": "36200"}
    extra = by_name["decode-0@d0"].kv_transfer_config["kv_connector_extra_config"]
    assert extra == {"prefill": {"dp_size": 2, "tp_size": 8}, "decode": {"dp_size": 8,
                                                                         "tp_size": 4}}
    engine_ids = {p.kv_transfer_config["engine_id"] for p in plan.processes}
    assert len(engine_ids) == 3
    d_ranges = [(c.host, c.start, c.end) for c in plan.ports.claims
                if c.what.endswith("'decode-0'") and "Mooncake" in c.what]
    assert d_ranges == [("d0", 36200, 36216), ("d1", 36216, 36232)]
    assert "use_ascend_direct" not in extra


def test_use_ascend_direct_only_on_0_11() -> None:
    def to(version: str) -> Any:
        def edit(data: dict[str, Any]) -> None:
            data["connector"]["vllm_ascend_version"] = version
        return build_plan(edited("a3-2p1d", edit)).processes[0].kv_transfer_config
    assert to("0.11.0")["kv_connector_extra_config"]["use_ascend_direct"] is True
    assert "use_ascend_direct" not in to("0.12.0rc1")["kv_connector_extra_config"]


def test_overrides_pass_through() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["decode"][0]["additional_config"] = {"torchair_graph_config": {
            "enable_multistream_mla": True}, "enable_weight_nz_layout": True}
        data["decode"][0]["env"] = {"TASK_QUEUE_ENABLE": "1", "OMP_NUM_THREADS": "4"}
        data["decode"][0]["extra_args"] = ["--no-enable-prefix-caching"]
    decode = build_plan(edited("a3-seed", edit)).processes[1]
    config = decode.argv[decode.argv.index("--additional-config") + 1]
    assert config == ('{"torchair_graph_config":{"enabled":true,"graph_batch_sizes":[32],'
                      '"enable_multistream_mla":true},"enable_weight_nz_layout":true}')
    assert decode.env["TASK_QUEUE_ENABLE"] == "1"
    assert decode.env["OMP_NUM_THREADS"] == "4"
    assert decode.argv[-1] == "--no-enable-prefix-caching"


def test_port_plan_reports_clashes_instead_of_moving_ports() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["prefill"][0]["port"] = 5660  # inside decode-0's LLMDataDist range 5657-5660
    plan = plan_ports(edited("a2-1p1d-single", edit))
    [(first, second)] = plan.clashes()
    assert "API port of 'prefill-0'" in first.what
    assert "decode-0" in second.what


def test_doctor_port_list_covers_every_reserved_range() -> None:
    plan = build_plan(load("a2-1p1d-single"))
    # LLMDataDist: prefill-0 binds 5557-5560 and decode-0 5657-5660 (base + local_dp*tp + rank).
    assert plan.ports_to_check("node0") == [
        5557, 5558, 5559, 5560, 5657, 5658, 5659, 5660, 8000, 8100, 8200]
    owners = plan.port_owners("node0")
    assert owners[5659] == ("the LLMDataDist RPC range of 'decode-0'", "decode-0@node0")
    assert owners[8000] == ("the proxy port", "proxy@node0")

    def mooncake(data: dict[str, Any]) -> None:
        data["connector"] = {"type": "mooncake", "vllm_ascend_version": "0.11.0"}
    kv = build_plan(edited("a2-1p1d-single", mooncake)).ports_to_check("node0")
    # Mooncake: kv_port + global_dp_rank*tp + tp_rank, instances 100 apart from 36000.
    assert [p for p in kv if p >= 36000] == [36000, 36001, 36002, 36003,
                                             36100, 36101, 36102, 36103]
    assert build_plan(edited("a2-1p1d-single", mooncake)).ports_to_check("elsewhere") == []


def test_template_problems_become_render_errors_naming_the_template() -> None:
    from ascend_pd.errors import RenderError
    from ascend_pd.render.templates import render_template

    with pytest.raises(RenderError, match=r"template 'nope\.sh\.j2' not found") as missing:
        render_template("nope.sh.j2")
    assert missing.value.exit_code == 6
    with pytest.raises(RenderError, match=r"template 'proxy\.sh\.j2' could not be rendered"):
        render_template("proxy.sh.j2")  # no context: StrictUndefined refuses
