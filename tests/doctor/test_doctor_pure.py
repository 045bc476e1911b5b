"""Pure parts of doctor: npu-smi health parsing, version ordering, checks over facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ascend_pd.doctor.checks import (
    HostPlan,
    check_cann_version,
    check_npu_health,
    check_ports,
    planned_ports,
)
from ascend_pd.doctor.compat import base_version, load_compat, version_key
from ascend_pd.doctor.facts import Facts, parse_facts
from ascend_pd.doctor.npu_health import device_health
from ascend_pd.doctor.simroot import npu_smi_a2_table
from ascend_pd.errors import ParseError
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


def test_versions_order_like_releases() -> None:
    assert version_key("8.2.RC1") < version_key("8.3.RC1") < version_key("8.3.0")
    assert version_key("0.10.0rc1") < version_key("0.10.0") < version_key("0.10.0.post1")
    assert version_key("2.7.1.dev20250724") < version_key("2.7.1") == version_key("2.7.1+cpu")
    assert base_version("2.5.1.post1+cpu") == "2.5.1"
    assert load_compat().release("0.11.0") is not None


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
    return HostPlan(spec, spec.hosts[0], planned_ports(spec, "n0"))


def test_planned_ports_name_their_listener() -> None:
    assert planned_ports(_spec(), "n0") == {8100: "prefill p API", 8200: "decode d API",
                                            8000: "proxy"}


def test_mooncake_needs_cann_8_3() -> None:
    facts = Facts({"cann.version": ("8.2.RC1",)})
    llm = check_cann_version(facts, _plan(_spec("llmdatadist", "0.10.1rc1")))
    assert llm.status == "pass"
    moon = check_cann_version(facts, _plan(_spec("mooncake", "0.10.1rc1")))
    assert moon.status == "fail"
    assert "8.3.RC1" in moon.expected
    assert "Mooncake" in moon.expected


def test_cann_minimum_comes_from_the_release_row() -> None:
    # vllm-ascend 0.11.0 documents CANN 8.3.RC2 (8.3.RC1 was only its rc1).
    plan = _plan(_spec("llmdatadist", "0.11.0"))
    old = check_cann_version(Facts({"cann.version": ("8.3.RC1",)}), plan)
    assert old.status == "fail" and "8.3.RC2" in old.expected
    assert check_cann_version(Facts({"cann.version": ("8.3.RC2",)}), plan).status == "pass"


def test_every_compat_row_is_verified() -> None:
    assert all(row.verified for row in load_compat().releases.values())


@pytest.mark.parametrize(("value", "status"), [("Warning", "warn"), ("Critical", "fail"),
                                               ("UNKNOWN", "fail")])
def test_npu_health_severity(value: str, status: str) -> None:
    table = npu_smi_a2_table({5: value})
    facts = parse_facts("probe.version=1\nnpu_smi.exit=0\n" + "".join(
        f"npu_smi.out={line}\n" for line in table.splitlines()))
    result = check_npu_health(facts, _plan(_spec()))
    assert (result.status, result.observed) == (status, f"device 5: {value}")


def test_probe_output_without_facts_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no facts"):
        parse_facts("sh: 1: Syntax error\n")


def test_a_port_held_by_its_own_running_instance_is_not_a_conflict() -> None:
    facts = Facts({"port.8100": ("busy",), "port.8200": ("busy",), "port.8000": ("free",),
                   "running": ("p@n0",)})
    result = check_ports(facts, _plan(_spec()))
    assert result.status == "fail"
    assert result.observed == "in use: 8200 (decode d API)"
    facts = Facts({**facts.values, "running": ("p@n0", "d@n0")})
    result = check_ports(facts, _plan(_spec()))
    assert result.status == "pass"
    assert "in use by its own running instance: 8100 (p@n0), 8200 (d@n0)" in result.observed
