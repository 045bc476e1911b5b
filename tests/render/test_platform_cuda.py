"""Platform cuda (upstream vLLM on GPUs): P2pNccl, the storage connector, hybrid DP,
vllm-router as the proxy, and the findings validate gives for them. The goldens of the GB200
NIXL recipe and the P2pNccl 1P1D are in test_render_golden.py."""

from __future__ import annotations

import json
from typing import Any

from ascend_pd.proxy.config import proxy_config_from_spec
from ascend_pd.render import build_plan
from ascend_pd.render.plan import ProcessPlan
from ascend_pd.validate import validate_spec

from .conftest import edited, load


def _kv(proc: ProcessPlan) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(proc.argv[proc.argv.index("--kv-transfer-config") + 1])
    return config


def _keys(spec_name: str, edit: Any, severity: str = "error") -> list[str]:
    report = validate_spec(edited(spec_name, edit))
    return [f.key for f in report.findings if f.severity == severity]


def test_p2p_nccl_servers_register_with_the_router_and_use_their_kv_ports() -> None:
    plan = build_plan(load("cuda-p2pnccl-1p1d"))
    p0, d0 = plan.processes
    assert _kv(p0) == {
        "kv_connector": "P2pNcclConnector", "kv_role": "kv_producer", "kv_buffer_size": "1e1",
        "kv_port": "21001", "kv_connector_extra_config": {
            "proxy_ip": "192.0.2.121", "proxy_port": "30001", "http_port": "20001",
            "send_type": "PUT_ASYNC"}}
    assert _kv(d0)["kv_role"] == "kv_consumer"
    assert _kv(d0)["kv_buffer_size"] == "8e9"
    assert _kv(d0)["kv_port"] == "21101"  # its own range: kv_port + rank per worker
    assert _kv(d0)["kv_connector_extra_config"]["http_port"] == "20002"
    for proc in (p0, d0):
        assert proc.env["CUDA_VISIBLE_DEVICES"] == "0"
        assert proc.env["NCCL_SOCKET_IFNAME"] == proc.env["GLOO_SOCKET_IFNAME"] == "eth0"
        assert proc.env["VLLM_HOST_IP"] == proc.address  # P2pNccl's ZMQ address (get_ip)
        assert not [k for k in proc.env if k.startswith(("ASCEND", "HCCL", "VLLM_NIXL"))]
    assert plan.ports_to_check("node-p") == [20001, 21001]
    assert plan.ports_to_check("proxy-0") == [10001, 29000, 30001]
    assert plan.proxy is not None and plan.proxy.kind == "vllm-router"
    assert plan.proxy.args == [
        "--host", "0.0.0.0", "--port", "10001", "--vllm-pd-disaggregation",
        "--vllm-discovery-address", "0.0.0.0:30001",
        # prefill: cache_aware, the default (the router has it too); decode: one server, and
        # the router's power_of_two needs two -- round_robin is the same pick
        "--prefill-policy", "cache_aware", "--decode-policy", "round_robin"]
    assert validate_spec(load("cuda-p2pnccl-1p1d")).errors == []


def test_p2p_nccl_findings() -> None:
    def proxy_kind(d: dict[str, Any]) -> None:
        d["proxy"]["kind"] = "ascend-pd"
    assert _keys("cuda-p2pnccl-1p1d", proxy_kind) == ["proxy.kind"]

    def removed(d: dict[str, Any]) -> None:
        d["connector"]["vllm_version"] = "0.30.0"
    assert _keys("cuda-p2pnccl-1p1d", removed) == ["connector.type"]

    def unset(d: dict[str, Any]) -> None:
        del d["connector"]["vllm_version"]
    assert _keys("cuda-p2pnccl-1p1d", unset) == []
    assert "connector.vllm_version" in _keys("cuda-p2pnccl-1p1d", unset, "warning")

    def on_cpu(d: dict[str, Any]) -> None:
        d["platform"] = "cpu"
    assert _keys("cuda-p2pnccl-1p1d", on_cpu) == ["connector.type"]

    def asymmetric(d: dict[str, Any]) -> None:
        d["decode"][0].update(devices=[0, 1], tp=2)
    errors = validate_spec(edited("cuda-p2pnccl-1p1d", asymmetric)).errors
    assert any("equal TP ranks only" in e.message for e in errors), errors

    def loopback(d: dict[str, Any]) -> None:
        d["hosts"][1]["nic"] = "lo"
    assert _keys("cuda-p2pnccl-1p1d", loopback) == ["hosts[1].nic"]

    def no_proxy(d: dict[str, Any]) -> None:
        del d["proxy"]
    assert _keys("cuda-p2pnccl-1p1d", no_proxy) == ["proxy"]

    def data_parallel(d: dict[str, Any]) -> None:
        d["decode"][0].update(devices=[0, 1], dp=2)
    assert _keys("cuda-p2pnccl-1p1d", data_parallel) == ["decode[0].dp"]


def _storage(version: str | None, path: str | None = "/mnt/kv") -> Any:
    def edit(d: dict[str, Any]) -> None:
        d["connector"] = {"type": "storage", "shared_storage_path": path,
                          "vllm_version": version}
        d["proxy"] = {"host": "proxy-0", "port": 8000}
    return edit


def test_storage_connector_name_follows_the_vllm_version_and_the_proxy_allows_no_kv() -> None:
    for version, name in (("0.12.0", "SharedStorageConnector"), ("0.13.0", "ExampleConnector"),
                          (None, "ExampleConnector")):
        spec = edited("cuda-p2pnccl-1p1d", _storage(version))
        plan = build_plan(spec)
        for proc in plan.processes:
            assert _kv(proc) == {"kv_connector": name, "kv_role": "kv_both",
                                 "kv_connector_extra_config": {"shared_storage_path": "/mnt/kv"}}
        assert plan.proxy is not None
        assert plan.proxy.args[-2:] == ["--kv-params", "optional"]
        assert proxy_config_from_spec(spec).kv_params == "optional"
        assert plan.ports_to_check("node-p") == [20001]  # the storage connector listens on none
    assert validate_spec(edited("cuda-p2pnccl-1p1d", _storage("0.13.0"))).findings == []
    assert _keys("cuda-p2pnccl-1p1d", _storage(None), "warning") == ["connector.vllm_version"]
    assert _keys("cuda-p2pnccl-1p1d", _storage("0.13.0", None)) == [
        "connector.shared_storage_path"]
    # NIXL keeps demanding kv_transfer_params: a prefill without them is a 502.
    nixl = build_plan(load("cuda-gb200-nixl"))
    assert nixl.proxy is not None and nixl.proxy.kv_params == "required"


def test_hybrid_dp_serves_the_api_on_every_host_and_the_router_lists_them() -> None:
    plan = build_plan(load("cuda-gb200-nixl"))
    d0a, d0b = (p for p in plan.processes if p.instance == "decode-0")
    for proc in (d0a, d0b):
        assert proc.head and proc.api_port == 8088
        assert "--headless" not in proc.argv
        assert "--data-parallel-hybrid-lb" in proc.argv
        assert proc.argv[proc.argv.index("--data-parallel-size-local") + 1] == "4"
        assert proc.argv[proc.argv.index("--data-parallel-address") + 1] == "192.0.2.105"
        assert proc.env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
        assert proc.env["VLLM_NIXL_SIDE_CHANNEL_HOST"] == proc.address
    assert "--data-parallel-start-rank" not in d0a.argv
    assert d0b.argv[d0b.argv.index("--data-parallel-start-rank") + 1] == "4"
    assert _kv(d0a) == {"kv_connector": "NixlConnector", "kv_role": "kv_both",
                        "kv_load_failure_policy": "fail"}
    # Side channel: one base per instance, + the global DP rank on each tray.
    assert plan.ports_to_check("gb-d0b") == [5904, 5905, 5906, 5907, 8088]
    assert plan.ports_to_check("gb-d0a") == [5900, 5901, 5902, 5903, 8088, 13345]
    assert plan.proxy is not None
    assert plan.proxy.decode == ["192.0.2.105:8088", "192.0.2.106:8088"]
    assert len(plan.proxy.prefill) == 4
    assert plan.proxy.args[:5] == ["--host", "0.0.0.0", "--port", "8000",
                                   "--vllm-pd-disaggregation"]
    assert plan.proxy.args[5:7] == ["--prefill", "http://192.0.2.101:8088"]
    assert validate_spec(load("cuda-gb200-nixl")).findings == []


def test_hybrid_dp_vllm_would_switch_off_is_a_warning() -> None:
    def one_rank_per_host(d: dict[str, Any]) -> None:
        d["decode"][0].update(devices=[0], dp=2)
    assert _keys("cuda-gb200-nixl", one_rank_per_host, "warning") == ["decode[0].dp_mode"]


def test_router_with_an_ascend_connector_and_dtype_mismatch_are_errors() -> None:
    def ascend(d: dict[str, Any]) -> None:
        d["platform"] = "ascend"
        d["connector"] = {"type": "mooncake", "vllm_ascend_version": "0.23.0.post1"}
        d["proxy"]["kind"] = "vllm-router"
    assert "proxy.kind" in _keys("cuda-p2pnccl-1p1d", ascend)

    def dtype(d: dict[str, Any]) -> None:
        d["decode"][0]["extra_args"] = ["--dtype", "bfloat16"]
    assert _keys("cuda-p2pnccl-1p1d", dtype) == ["decode[0].extra_args"]


def test_the_proxy_takes_the_plans_kv_params_from_its_argv() -> None:
    from click.testing import CliRunner

    from ascend_pd.cli import cli

    plan = build_plan(edited("cuda-p2pnccl-1p1d", _storage("0.13.0")))
    assert plan.proxy is not None
    out = CliRunner().invoke(cli, ["proxy", *plan.proxy.args, "--dry-run", "--json"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["data"]["kv_params"] == "optional"
    bad = CliRunner().invoke(cli, ["proxy", *plan.proxy.args[:-1], "sometimes", "--json"],
                             catch_exceptions=False)
    assert bad.exit_code == 2  # not a choice: a usage error


def test_rendered_proxy_script_execs_vllm_router_with_the_plans_argv(tmp_path: Any) -> None:
    from ascend_pd.render import render_deploy

    from .test_render_run import _fake, _run

    spec = load("cuda-p2pnccl-1p1d")
    out = tmp_path / "deploy"
    render_deploy(spec, out, "cuda-p2pnccl-1p1d.yaml")
    _fake(tmp_path / "bin", "vllm-router")
    seen = _run(out / "proxy@proxy-0.sh", tmp_path / "bin")
    plan = build_plan(spec)
    assert plan.proxy is not None
    assert seen["argv"] == plan.proxy.args
