"""Platform cpu (upstream vLLM, NixlConnector): what the plan gives each server, and the
findings when connector and platform do not fit. tests/realvllm runs such a plan for real."""

from __future__ import annotations

import json

from ascend_pd.render import build_plan
from ascend_pd.spec.loader import parse_spec
from ascend_pd.validate import validate_spec

CPU_SPEC = """
version: 1
name: cpu-1p1d
platform: cpu
backend: local
hosts:
  - {name: node-p, address: 127.0.0.2, nic: lo, devices: [0]}
  - {name: node-d, address: 127.0.0.3, nic: lo, devices: [0, 1]}
model: {path: /models/tiny, served_name: tiny, max_model_len: 1024, attention: gqa}
connector: {type: nixl, kv_port_base: 45000}
prefill:
  - {name: p0, hosts: [node-p], devices: [0], port: 8100}
decode:
  - {name: d0, hosts: [node-d], devices: [0, 1], dp: 2, port: 8200}
proxy: {host: node-p, port: 8000, bind: 127.0.0.2}
"""


def test_cpu_servers_get_upstream_vllm_with_nixl_and_no_ascend_settings() -> None:
    plan = build_plan(parse_spec(CPU_SPEC))
    p0, d0 = plan.processes
    assert p0.argv[:5] == ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model",
                           "/models/tiny"]
    config = json.loads(p0.argv[p0.argv.index("--kv-transfer-config") + 1])
    assert config == {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
    assert p0.kv_transfer_config == d0.kv_transfer_config == config
    assert "--additional-config" not in d0.argv  # no torchair graph mode off Ascend
    for proc in (p0, d0):
        assert not [k for k in proc.env if k.startswith(("ASCEND", "HCCL", "PYTORCH_NPU"))]
        assert proc.env["VLLM_NIXL_SIDE_CHANNEL_HOST"] == proc.address
        assert proc.bind == proc.address  # loopback hosts share one machine
    # One side-channel base per instance; vLLM adds the DP rank, so d0 holds 45100-45101.
    assert p0.env["VLLM_NIXL_SIDE_CHANNEL_PORT"] == "45000"
    assert d0.env["VLLM_NIXL_SIDE_CHANNEL_PORT"] == "45100"
    assert sorted(plan.ports_to_check("node-d")) == [8200, 13356, 45100, 45101]
    assert validate_spec(parse_spec(CPU_SPEC)).errors == []


def test_connector_and_platform_must_fit() -> None:
    ascend_nixl = CPU_SPEC.replace("platform: cpu", "platform: ascend")
    errors = validate_spec(parse_spec(ascend_nixl)).errors
    assert [(e.key, "upstream vLLM" in e.message) for e in errors] == [("connector.type", True)]
    cpu_mooncake = CPU_SPEC.replace("type: nixl", "type: mooncake")
    errors = validate_spec(parse_spec(cpu_mooncake)).errors
    assert [e.key for e in errors] == ["connector.type"]
    assert "use type: nixl" in errors[0].fix


def test_nixl_side_channel_ranges_that_overlap_are_an_error() -> None:
    # Both instances on one host, the API port of d0 inside p0's side-channel port.
    shared = (CPU_SPEC.replace("hosts: [node-d], devices: [0, 1], dp: 2, port: 8200",
                               "hosts: [node-p], devices: [0], port: 45000")
              .replace("{name: node-p, address: 127.0.0.2, nic: lo, devices: [0]}",
                       "{name: node-p, address: 127.0.0.2, nic: lo, devices: [0, 1]}")
              .replace("devices: [0], port: 45000", "devices: [1], port: 45000"))
    errors = validate_spec(parse_spec(shared)).errors
    assert any("NIXL side-channel port range of 'p0'" in e.message for e in errors), errors
