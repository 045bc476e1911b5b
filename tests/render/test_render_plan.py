"""The deployment plan: versions, DP layout, environment, kv-transfer-config and ports."""

from __future__ import annotations

from typing import Any

import pytest

from ascend_pd.render import build_plan, plan_ports

from .conftest import edited, load


def _on(name: str, version: str, **connector: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["connector"].update(vllm_ascend_version=version, **connector)
    return build_plan(edited(name, edit))


@pytest.mark.parametrize(("version", "name"), [
    # vllm-ascend v0.11.0 / v0.13.0 mooncake_connector.py read vLLM's NIXL name; #8618
    # renamed it in v0.18.0 (kv_p2p/mooncake_connector.py).
    ("0.11.0", "VLLM_NIXL_ABORT_REQUEST_TIMEOUT"), ("0.13.0", "VLLM_NIXL_ABORT_REQUEST_TIMEOUT"),
    ("0.18.0", "VLLM_MOONCAKE_ABORT_REQUEST_TIMEOUT"),
    ("0.23.0.post1", "VLLM_MOONCAKE_ABORT_REQUEST_TIMEOUT"),
])
def test_abort_timeout_is_written_under_the_name_the_release_reads(
        version: str, name: str) -> None:
    plan = _on("a3-2p1d", version, abort_request_timeout_s=900)
    assert all(p.env[name] == "900" for p in plan.processes)
    other = {"VLLM_NIXL_ABORT_REQUEST_TIMEOUT", "VLLM_MOONCAKE_ABORT_REQUEST_TIMEOUT"} - {name}
    assert all(not other & set(p.env) for p in plan.processes)
    # Not set in the spec: nothing written, the release's own default applies.
    assert all(name not in p.env for p in _on("a3-2p1d", version).processes)


def test_decode_graph_mode_follows_the_release() -> None:
    old = _on("a3-2p1d", "0.11.0")
    decode = old.processes[-2]
    assert "torchair_graph_config" in decode.argv[decode.argv.index("--additional-config") + 1]
    assert "--compilation-config" not in decode.argv
    for version in ("0.13.0", "0.23.0.post1", "0.30.0rc2"):
        decode = _on("a3-2p1d", version).processes[-2]
        assert decode.role == "decode"
        assert "--additional-config" not in decode.argv
        config = decode.argv[decode.argv.index("--compilation-config") + 1]
        assert config == '{"cudagraph_mode":"FULL_DECODE_ONLY","cudagraph_capture_sizes":[28]}'
        prefill = _on("a3-2p1d", version).processes[0]
        assert "--compilation-config" not in prefill.argv and "--enforce-eager" in prefill.argv


def test_hybrid_connector_keeps_the_hybrid_kv_cache_manager() -> None:
    plan = _on("a3-2p1d", "0.23.0.post1", mooncake_connector="MooncakeHybridConnector")
    for proc in plan.processes:
        assert proc.kv_transfer_config["kv_connector"] == "MooncakeHybridConnector"
        assert "--no-disable-hybrid-kv-cache-manager" in proc.argv


def test_layerwise_renders_a_decode_first_proxy_with_a_reachable_metaserver() -> None:
    plan = _on("a3-2p1d", "0.23.0.post1", mooncake_connector="MooncakeLayerwiseConnector")
    assert plan.proxy is not None and plan.proxy.flow == "decode-first"
    args = plan.proxy.args
    assert args[args.index("--flow") + 1] == "decode-first"
    # The proxy binds 0.0.0.0; D must call back an address it can reach: p0's.
    assert args[args.index("--metaserver-url") + 1] == "http://192.0.2.21:8000/v1/metaserver"
    v1 = _on("a3-2p1d", "0.23.0.post1")
    assert v1.proxy is not None and "--flow" not in v1.proxy.args


def test_external_dp_runs_one_api_server_per_rank_and_the_proxy_lists_them_all() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["decode"][0]["dp_mode"] = "external"
    plan = build_plan(edited("a3-2p1d", edit))
    decode = [p for p in plan.processes if p.role == "decode"]
    assert [p.name for p in decode] == [f"decode-0-dp{r}@d{r // 4}" for r in range(8)]
    rank5 = decode[5]
    assert rank5.env["ASCEND_RT_VISIBLE_DEVICES"] == "4,5,6,7"  # its tp=4 share of d1
    argv = rank5.argv
    assert argv[argv.index("--data-parallel-rank") + 1] == "5"
    assert argv[argv.index("--port") + 1] == "8201"
    assert "--headless" not in argv and "--data-parallel-size-local" not in argv
    assert argv[argv.index("--data-parallel-address") + 1] == "192.0.2.23"
    assert plan.proxy is not None
    assert plan.proxy.decode == [f"192.0.2.{23 + r // 4}:{8200 + r % 4}" for r in range(8)]
    # Each rank's kv_port range is its own: kv_port + rank*tp, tp ports.
    owners = plan.port_owners("d1")
    assert owners[36200 + 5 * 4] == ("the Mooncake kv_port range of 'decode-0'",
                                     "decode-0-dp5@d1")
    assert owners[8201] == ("the API port of 'decode-0' DP rank 5", "decode-0-dp5@d1")
    assert not plan.ports.clashes()


def test_connector_v2_reserves_its_control_ports() -> None:
    plan = _on("a3-2p1d", "0.30.0rc2", mooncake_connector="MooncakeConnectorV2")
    decode = [(c.host, c.start, c.end) for c in plan.ports.claims
              if c.what == "the Mooncake control ports of 'decode-0'"]
    # decode-0: kv_port 36200 (each prefill needs 2*8 + 2 ports -> bases 100 apart), dp 8
    # tp 4: control ports kv_port + dp*tp + dp_rank = 36232 + rank, 4 ranks per host.
    assert plan.ports.instances["decode-0"].kv_port == 36200
    assert decode == [("d0", 36232, 36236), ("d1", 36236, 36240)]
    assert not plan.ports.clashes()


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


def test_single_host_1p1d_gets_disjoint_kv_ranges_and_intra_roce() -> None:
    plan = build_plan(load("a2-1p1d-single"))
    prefill, decode = plan.processes
    assert prefill.env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1,2,3"
    assert decode.env["ASCEND_RT_VISIBLE_DEVICES"] == "4,5,6,7"
    assert prefill.kv_transfer_config["kv_port"] == "36000"
    assert decode.kv_transfer_config["kv_port"] == "36100"
    assert prefill.env["HCCL_INTRA_ROCE_ENABLE"] == decode.env["HCCL_INTRA_ROCE_ENABLE"] == "1"
    ranges = [(c.start, c.end) for c in plan.ports.claims if "Mooncake" in c.what]
    assert ranges == [(36000, 36004), (36100, 36104)]
    assert not plan.ports.clashes()
    assert all("DISAGGREGATED_PREFILL_RANK_TABLE_PATH" not in p.env for p in plan.processes)


def test_separate_hosts_do_not_enable_intra_roce() -> None:
    plan = build_plan(load("a3-seed"))
    assert all("HCCL_INTRA_ROCE_ENABLE" not in p.env for p in plan.processes)
    assert all(p.env["VLLM_HOST_IP"] == p.env["HCCL_IF_IP"] == p.address for p in plan.processes)


def test_llmdatadist_kv_config_on_the_legacy_release() -> None:
    plan = build_plan(load("a2-1p1d-legacy-llmdatadist"))
    configs = [p.kv_transfer_config for p in plan.processes]
    assert [c["kv_role"] for c in configs] == ["kv_producer", "kv_consumer"]
    assert all(c["kv_connector"] == "LLMDataDistCMgrConnector" for c in configs)
    assert all(c["kv_buffer_device"] == "npu" for c in configs)
    assert all("kv_connector_module_path" not in c for c in configs)
    # 0.11.0 llmdatadist_c_mgr_connector.py reads the rank table and the renamed RPC variable.
    assert [p.env["VLLM_ASCEND_LLMDD_RPC_PORT"] for p in plan.processes] == ["5557", "5657"]
    assert all(p.env["DISAGGREGATED_PREFILL_RANK_TABLE_PATH"] == "/etc/ascend-pd/ranktable.json"
               for p in plan.processes)


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
    assert "use_ascend_direct" not in to("0.13.0")["kv_connector_extra_config"]


def test_overrides_pass_through() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["decode"][0]["additional_config"] = {
            "recompute_scheduler_enable": True,
            "finegrained_tp_config": {"lmhead_tensor_parallel_size": 16}}
        data["decode"][0]["env"] = {"TASK_QUEUE_ENABLE": "1", "OMP_NUM_THREADS": "4"}
        data["decode"][0]["extra_args"] = ["--no-enable-prefix-caching"]
    decode = build_plan(edited("a3-seed", edit)).processes[1]
    config = decode.argv[decode.argv.index("--additional-config") + 1]
    assert config == ('{"recompute_scheduler_enable":true,'
                      '"finegrained_tp_config":{"lmhead_tensor_parallel_size":16}}')
    assert decode.env["TASK_QUEUE_ENABLE"] == "1"
    assert decode.env["OMP_NUM_THREADS"] == "4"
    assert decode.argv[-1] == "--no-enable-prefix-caching"


def test_torchair_overrides_merge_on_the_release_that_has_it() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["connector"]["vllm_ascend_version"] = "0.11.0"
        data["decode"][0]["additional_config"] = {"torchair_graph_config": {
            "enable_multistream_mla": True}}
    decode = build_plan(edited("a3-seed", edit)).processes[1]
    config = decode.argv[decode.argv.index("--additional-config") + 1]
    assert config == ('{"torchair_graph_config":{"enabled":true,"graph_batch_sizes":[32],'
                      '"enable_multistream_mla":true}}')


def test_port_plan_reports_clashes_instead_of_moving_ports() -> None:
    def edit(data: dict[str, Any]) -> None:
        data["prefill"][0]["port"] = 36101  # inside decode-0's kv_port range 36100-36103
    plan = plan_ports(edited("a2-1p1d-single", edit))
    [(first, second)] = plan.clashes()
    assert "API port of 'prefill-0'" in first.what
    assert "decode-0" in second.what


def test_doctor_port_list_covers_every_reserved_range() -> None:
    legacy = build_plan(load("a2-1p1d-legacy-llmdatadist"))
    # LLMDataDist: each worker binds base + local_dp_rank*tp + tp_rank (tp 8 -> 8 ports).
    assert legacy.ports_to_check("node-p") == [*range(5557, 5565), 8000, 8100]
    assert legacy.ports_to_check("node-d") == [*range(5657, 5665), 8200]
    owners = legacy.port_owners("node-d")
    assert owners[5660] == ("the LLMDataDist RPC range of 'decode-0'", "decode-0@node-d")
    assert legacy.port_owners("node-p")[8000] == ("the proxy port", "proxy@node-p")

    plan = build_plan(load("a2-1p1d-single"))
    # Mooncake: kv_port + global_dp_rank*tp + tp_rank, instances 100 apart from 36000.
    assert plan.ports_to_check("node0") == [8000, 8100, 8200, *range(36000, 36004),
                                            *range(36100, 36104)]
    assert plan.ports_to_check("elsewhere") == []


def test_template_problems_become_render_errors_naming_the_template() -> None:
    from ascend_pd.errors import RenderError
    from ascend_pd.render.templates import render_template

    with pytest.raises(RenderError, match=r"template 'nope\.sh\.j2' not found") as missing:
        render_template("nope.sh.j2")
    assert missing.value.exit_code == 6
    with pytest.raises(RenderError, match=r"template 'proxy\.sh\.j2' could not be rendered"):
        render_template("proxy.sh.j2")  # no context: StrictUndefined refuses


def test_spec_proxy_settings_reach_the_rendered_proxy() -> None:
    """The rendered proxy's argv, run through the real CLI, probes as the spec says; unset
    keys add no flag (the proxy's defaults apply)."""
    import json

    from click.testing import CliRunner

    from ascend_pd.cli import cli

    def edit(data: dict[str, Any]) -> None:
        data["proxy"].update(health_timeout_s=10.0, eject_after=6, policy_prefill="cache_aware")

    plan = build_plan(edited("a3-2p1d", edit))
    assert plan.proxy is not None
    out = CliRunner().invoke(cli, ["proxy", *plan.proxy.args, "--dry-run", "--json"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)["data"]
    assert (data["health_timeout_s"], data["eject_after"], data["health_interval_s"]) == (
        10.0, 6, 2.0)
    assert data["policy_prefill"] == "cache_aware"
    default = build_plan(load("a3-2p1d")).proxy
    assert default is not None and "--health-timeout" not in default.args
