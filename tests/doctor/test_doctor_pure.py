"""Pure parts of doctor: npu-smi health parsing, checks over facts and release facts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ascend_pd.doctor.checks import (
    CheckResult,
    HostPlan,
    check_npu_health,
    check_packages,
    check_ports,
    planned_ports,
)
from ascend_pd.doctor.facts import Facts, parse_facts
from ascend_pd.doctor.npu_health import device_health
from ascend_pd.doctor.release_checks import (
    check_cann_version,
    check_connector,
    check_python_version,
    check_torch_npu_build,
    check_vllm_pair,
)
from ascend_pd.doctor.simroot import npu_smi_a2_table
from ascend_pd.errors import ParseError
from ascend_pd.releases import known_releases, resolve
from ascend_pd.render.plan import build_plan
from ascend_pd.spec.models import ClusterSpec

DATA = Path(__file__).resolve().parent.parent / "data" / "doctor"


def test_a2_table_maps_npu_to_health() -> None:
    health = device_health((DATA / "npu-smi-info-a2-24.1.0.3.txt").read_text(encoding="utf-8"))
    assert health == dict.fromkeys(range(8), "OK")


def test_a2_25x_table_with_chip_1_row() -> None:
    text = (DATA / "npu-smi-info-a2-25.5.2.txt").read_text(encoding="utf-8")
    assert device_health(text) == {0: "OK", 1: "OK"}


def test_a3_table_uses_phy_id() -> None:
    text = (DATA / "npu-smi-info-a3-24.1.rc3.7.txt").read_text(encoding="utf-8")
    assert device_health(text) == dict.fromkeys(range(16), "OK")


def test_garbage_is_a_parse_error_quoting_the_line() -> None:
    with pytest.raises(ParseError) as info:
        device_health("dcmi module initialize failed. ret is -8005\n")
    assert info.value.line.startswith("dcmi module")


def _spec(connector: str = "llmdatadist", version: str = "0.11.0") -> ClusterSpec:
    return ClusterSpec.model_validate({
        "hosts": [{"name": "n0", "address": "192.0.2.11", "devices": list(range(8))}],
        "model": {"path": "/models/m", "served_name": "m"},
        "connector": {"type": connector, "vllm_ascend_version": version},
        "prefill": [{"name": "p", "hosts": ["n0"], "devices": [0, 1], "tp": 2, "port": 8100,
                     "dp": 1}],
        "decode": [{"name": "d", "hosts": ["n0"], "devices": [2, 3], "tp": 2, "port": 8200}],
        "proxy": {"host": "n0", "port": 8000},
    })


def _plan(spec: ClusterSpec) -> HostPlan:
    deploy = build_plan(spec)
    return HostPlan(spec, spec.hosts[0], planned_ports(deploy, "n0"), deploy)


def test_planned_ports_are_the_deployment_plans_with_their_units() -> None:
    # The API and proxy ports, and every port of the LLMDataDist RPC ranges the plan reserves
    # (doctor once checked only API, DP RPC and proxy ports).
    assert planned_ports(build_plan(_spec()), "n0") == {
        8100: ("the API port of 'p'", "p@n0"), 8200: ("the API port of 'd'", "d@n0"),
        5557: ("the LLMDataDist RPC range of 'p'", "p@n0"),
        5558: ("the LLMDataDist RPC range of 'p'", "p@n0"),
        5657: ("the LLMDataDist RPC range of 'd'", "d@n0"),
        5658: ("the LLMDataDist RPC range of 'd'", "d@n0"),
        8000: ("the proxy port", "proxy@n0")}


def test_a_busy_mooncake_kv_port_fails_the_ports_check() -> None:
    plan = _plan(_spec("mooncake", "0.23.0"))
    kv = [p for p, (what, _unit) in plan.ports.items() if "kv_port" in what]
    assert kv, "the Mooncake kv_port range is in doctor's list"
    facts = Facts({f"port.{kv[0]}": ("busy",)})
    result = check_ports(facts, plan)
    assert result.severity == "error" and str(kv[0]) in result.message


def _check(check: Callable[[Facts, HostPlan], CheckResult], facts: dict[str, str],
           connector: str = "mooncake", version: str = "0.23.0") -> CheckResult:
    values = {k: (v,) for k, v in facts.items()}
    return check(Facts(values), _plan(_spec(connector, version)))


def test_cann_minimum_is_the_releases_stable_cann() -> None:
    # 0.23.0's row in upstream's matrix: stable CANN 9.1.0 (harvested, not typed here).
    needed = resolve("0.23.0").facts.compat.cann
    old = _check(check_cann_version, {"cann.version": "8.3.RC2"})
    assert old.severity == "error" and f"CANN >= {needed}" in old.expected
    assert f"Install CANN {needed}" in old.fix
    assert _check(check_cann_version, {"cann.version": needed or ""}).severity == "pass"


def test_cann_of_an_unknown_release_is_unknown_not_an_old_floor() -> None:
    newest = known_releases()[-1]
    result = _check(check_cann_version, {"cann.version": "8.3.RC2"}, version="99.1.0")
    assert result.severity == "warning"
    assert f"using the facts of {newest}" in result.expected


def test_vllm_pairing_comes_from_the_matrix_not_the_same_xyz() -> None:
    # v0.14.0rc1 is built against vLLM v0.14.1.
    ok = _check(check_vllm_pair, {"py.vllm": "0.14.1", "py.vllm_ascend": "0.14.0rc1"},
                version="0.14.0rc1")
    assert ok.severity == "pass"
    bad = _check(check_vllm_pair, {"py.vllm": "0.14.0", "py.vllm_ascend": "0.14.0rc1"},
                 version="0.14.0rc1")
    assert bad.severity == "error" and "pip install vllm==0.14.1" in bad.fix


def test_connector_missing_from_the_installed_release_fails() -> None:
    # LLMDataDist was removed in 0.12.0rc1; a 0.23.0.post1 host cannot serve it.
    result = _check(check_connector, {"py.vllm_ascend": "0.23.0.post1"}, "llmdatadist", "0.11.0")
    assert result.severity == "error"
    assert "LLMDataDistCMgrConnector" in result.message
    assert "MooncakeConnectorV1" in result.expected and "0.23.0.post1" in result.expected


def test_torch_npu_build_older_than_the_release_names_fails() -> None:
    wanted = resolve("0.23.0.post1").facts.compat.torch_npu
    result = _check(check_torch_npu_build, {"py.vllm_ascend": "0.23.0.post1",
                                            "py.torch_npu": "2.10.0"})
    assert result.severity == "error" and f"torch-npu=={wanted}" in result.fix


def test_python_outside_the_releases_range_fails() -> None:
    result = _check(check_python_version, {"py.python": "3.13.1",
                                           "py.vllm_ascend": "0.23.0.post1"})
    assert result.severity == "error" and "<3.13" in result.expected


def test_either_mooncake_distribution_counts() -> None:
    base = {"py.python": "3.11.7", "py.torch": "2.10.0", "py.torch_npu": "2.10.0.post4",
            "py.vllm": "0.23.0", "py.vllm_ascend": "0.23.0.post1"}
    missing = _check(check_packages, base)
    assert missing.severity == "warning" and "mooncake-transfer-engine-npu" in missing.expected
    found = _check(check_packages, {**base, "py.mooncake_transfer_engine_npu": "0.3.11.post1"})
    assert found.severity == "pass" and "mooncake-transfer-engine-npu 0.3.11.post1" in found.message


@pytest.mark.parametrize(("value", "status"), [("Warning", "warning"), ("Critical", "error"),
                                               ("UNKNOWN", "error")])
def test_npu_health_severity(value: str, status: str) -> None:
    table = npu_smi_a2_table({5: value})
    facts = parse_facts("probe.version=1\nnpu_smi.exit=0\n" + "".join(
        f"npu_smi.out={line}\n" for line in table.splitlines()))
    result = check_npu_health(facts, _plan(_spec()))
    assert (result.severity, result.message) == (status, f"device 5: {value}")


def test_probe_output_without_facts_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no facts"):
        parse_facts("sh: 1: Syntax error\n")


def test_a_port_held_by_its_own_running_instance_is_not_a_conflict() -> None:
    facts = Facts({"port.8100": ("busy",), "port.8200": ("busy",), "port.8000": ("free",),
                   "running": ("p@n0",)})
    result = check_ports(facts, _plan(_spec()))
    assert result.severity == "error"
    assert result.message == "in use: 8200 (the API port of 'd')"
    facts = Facts({**facts.values, "running": ("p@n0", "d@n0")})
    result = check_ports(facts, _plan(_spec()))
    assert result.severity == "pass"
    assert "in use by its own running instance: 8100 (p@n0), 8200 (d@n0)" in result.message
