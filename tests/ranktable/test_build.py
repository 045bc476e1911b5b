"""Ranktable building and validation on hand-made facts (pure, no I/O)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from ascend_pd.errors import DeviceIpMissingError, RanktableError
from ascend_pd.examples import example_spec
from ascend_pd.ranktable.build import build_ranktable
from ascend_pd.ranktable.io import dumps
from ascend_pd.ranktable.plan import plan_from_flags, plan_from_spec
from ascend_pd.resources import data_dir
from ascend_pd.spec import parse_spec

from .factsgen import a2_host, a3_host

SCHEMA = json.loads((data_dir("ranktable") / "schema.json").read_text())
A2_KEYS = ["server_id", "device_id", "device_ip", "cluster_id"]
A3_KEYS = ["server_id", "device_id", "device_ip", "super_pod_id", "super_device_id", "cluster_id"]


def assert_valid(table: dict[str, object]) -> None:
    jsonschema.validate(table, SCHEMA)
    assert list(table) == ["version", "server_count", "prefill_device_list",
                           "decode_device_list", "status"]


def test_flags_a2_two_hosts_matches_reference_example() -> None:
    plan = plan_from_flags(["192.0.0.1", "192.0.0.2"], 8, 8)
    facts = {"192.0.0.1": a2_host("192.0.0.1", "192.0.0.1", 1),
             "192.0.0.2": a2_host("192.0.0.2", "192.0.0.2", 2)}
    table = build_ranktable(plan, facts)
    assert_valid(table)
    expected = (data_dir("ranktable") / "example-a2-1p1d.json").read_text()
    assert dumps(table) == expected


def test_flags_a3_two_hosts_matches_reference_example() -> None:
    plan = plan_from_flags(["192.0.0.1", "192.0.0.2"], 16, 16)
    facts = {"192.0.0.1": a3_host("192.0.0.1", "192.0.0.1", 25),
             "192.0.0.2": a3_host("192.0.0.2", "192.0.0.2", 26)}
    table = build_ranktable(plan, facts)
    assert_valid(table)
    assert all(list(e) == A3_KEYS for e in table["prefill_device_list"])
    assert dumps(table) == (data_dir("ranktable") / "example-a3-1p1d.json").read_text()


def test_spec_one_host_p_and_d_on_different_devices() -> None:
    spec = parse_spec(example_spec("a2-1p1d-single"))
    facts = {"node0": a2_host("node0", "192.0.2.11", 1)}
    table = build_ranktable(plan_from_spec(spec), facts)
    assert_valid(table)
    assert table["server_count"] == "1"
    assert [e["device_id"] for e in table["prefill_device_list"]] == ["0", "1", "2", "3"]
    assert [e["device_id"] for e in table["decode_device_list"]] == ["4", "5", "6", "7"]
    assert [e["cluster_id"] for e in table["decode_device_list"]] == ["5", "6", "7", "8"]
    assert all(list(e) == A2_KEYS for e in table["decode_device_list"])


def test_spec_dp_over_two_hosts_keeps_instance_then_host_order() -> None:
    spec = parse_spec(example_spec("a3-2p1d"))
    facts = {f"{h}": a3_host(h, spec.host(h).address, i + 1)
             for i, h in enumerate(["p0", "p1", "d0", "d1"])}
    table = build_ranktable(plan_from_spec(spec), facts)
    assert_valid(table)
    assert table["server_count"] == "4"
    sids = [e["server_id"] for e in table["decode_device_list"]]
    assert sids[:16] == ["192.0.2.23"] * 16 and sids[16:] == ["192.0.2.24"] * 16
    ids = [int(e["cluster_id"]) for e in table["prefill_device_list"] + table["decode_device_list"]]
    assert ids == list(range(1, 65))


def two_a2() -> dict[str, object]:
    return {"192.0.0.1": a2_host("192.0.0.1", "192.0.0.1", 1),
            "192.0.0.2": a2_host("192.0.0.2", "192.0.0.2", 2)}


def build_flags(facts: dict, p: int = 8, d: int = 8) -> dict[str, object]:
    return build_ranktable(plan_from_flags(list(facts), p, d), facts)


def test_more_devices_than_present() -> None:
    with pytest.raises(RanktableError, match="8 prefill \\+ 9 decode devices asked but the cluster has 16"):
        build_flags(two_a2(), 8, 9)


def test_device_without_ip_exit_13() -> None:
    facts = two_a2()
    host = facts["192.0.0.2"]
    host.devices[3] = dataclasses.replace(
        host.devices[3], device_ip=None,
        ip_error="Get ipconf failed, because no ip was preset there!")
    with pytest.raises(DeviceIpMissingError) as info:
        build_flags(facts)
    assert info.value.exit_code == 13
    line = info.value.problems[0]
    assert "192.0.0.2 device 3" in line
    assert "hccn_tool -i 3 -ip -s address" in line


def test_a3_device_without_vnic() -> None:
    facts = {"a": a3_host("a", "10.0.0.1", 1), "b": a3_host("b", "10.0.0.2", 2)}
    facts["a"].devices[5] = dataclasses.replace(facts["a"].devices[5], device_ip=None)
    plan = plan_from_flags(["a", "b"], 16, 16)
    plan.hosts = [dataclasses.replace(h, address=f"10.0.0.{i + 1}") for i, h in enumerate(plan.hosts)]
    with pytest.raises(DeviceIpMissingError, match="vNIC"):
        build_ranktable(plan, facts)


def test_duplicate_device_ips() -> None:
    facts = two_a2()
    facts["192.0.0.2"].devices[0] = dataclasses.replace(
        facts["192.0.0.2"].devices[0], device_ip="29.10.1.1")
    with pytest.raises(RanktableError, match="29.10.1.1 is also used by 192.0.0.1 device 0"):
        build_flags(facts)


def test_server_id_not_an_address_of_the_host() -> None:
    facts = two_a2()
    facts["192.0.0.1"].addresses = ["10.9.9.9"]
    with pytest.raises(RanktableError, match="server_id 192.0.0.1 is not an address of the host"):
        build_flags(facts)


def test_mixed_a2_a3() -> None:
    facts = {"192.0.0.1": a2_host("192.0.0.1", "192.0.0.1", 1),
             "192.0.0.2": a3_host("192.0.0.2", "192.0.0.2", 2)}
    with pytest.raises(RanktableError, match="mixed A2 and A3"):
        build_flags(facts, 8, 8)


def test_inconsistent_super_pod_ids_and_bad_sdid() -> None:
    facts = {"192.0.0.1": a3_host("192.0.0.1", "192.0.0.1", 25),
             "192.0.0.2": a3_host("192.0.0.2", "192.0.0.2", 26)}
    host = facts["192.0.0.1"]
    host.devices[2] = dataclasses.replace(host.devices[2], super_pod_id="7")
    host.devices[4] = dataclasses.replace(host.devices[4], super_device_id=host.devices[0].super_device_id)
    with pytest.raises(RanktableError) as info:
        build_flags(facts, 16, 16)
    text = "\n".join(info.value.problems)
    assert "different super pod ids" in text
    assert "SDID 104857600 is also 192.0.0.1 device 0" in text
    assert "decodes to card 0 die 0, not card 2 die 0" in text


def test_device_not_present_on_host() -> None:
    spec = parse_spec(example_spec("a2-1p1d-single"))
    facts = {"node0": a2_host("node0", "192.0.2.11", 1, devices=6)}
    with pytest.raises(RanktableError) as info:
        build_ranktable(plan_from_spec(spec), facts)
    assert [p.split(":")[0] for p in info.value.problems] == ["node0 device 6", "node0 device 7"]
    assert "device 6 is not present (npu-smi lists [0, 1, 2, 3, 4, 5])" in info.value.problems[0]


def test_devices_outside_visible_devices() -> None:
    spec = parse_spec(example_spec("a2-1p1d-single"))
    plan = plan_from_spec(spec)
    plan.visible["decode-0"]["node0"] = [4, 5, 6]
    with pytest.raises(RanktableError, match="outside instance 'decode-0' visible devices"):
        build_ranktable(plan, {"node0": a2_host("node0", "192.0.2.11", 1)})


def test_all_problems_listed_together() -> None:
    facts = two_a2()
    facts["192.0.0.1"].addresses = ["10.9.9.9"]
    facts["192.0.0.2"].devices[1] = dataclasses.replace(facts["192.0.0.2"].devices[1], device_ip=None)
    with pytest.raises(DeviceIpMissingError) as info:
        build_flags(facts)
    assert len(info.value.problems) == 2


def test_example_files_validate_against_schema() -> None:
    for path in Path(data_dir("ranktable")).glob("example-*.json"):
        assert_valid(json.loads(path.read_text()))


def test_same_sdid_in_different_super_pods_is_fine() -> None:
    facts = {"192.0.0.1": a3_host("192.0.0.1", "192.0.0.1", 25, pod="0"),
             "192.0.0.2": a3_host("192.0.0.2", "192.0.0.2", 25, pod="1")}
    facts["192.0.0.2"].devices = {
        d: dataclasses.replace(v, device_ip=f"192.169.25.{199 - d}")
        for d, v in facts["192.0.0.2"].devices.items()}
    table = build_flags(facts, 16, 16)
    assert table["decode_device_list"][0]["super_pod_id"] == "1"


def test_a_query_that_ended_without_output_says_so() -> None:
    # An SSH channel that closes without an exit status reads as exit -1 and no output; the
    # problem line used to say "(empty; ...)", as if the tool had answered with no address.
    from ascend_pd.hccn.client import query_job
    from ascend_pd.ranktable.collect import _absorb
    from ascend_pd.ranktable.facts import HostFacts
    from ascend_pd.runners.base import CommandResult
    from ascend_pd.runners.fanout import Outcome

    job = query_job("h1", "hccn_tool", "vnic", 3)
    facts = {"h1": HostFacts("h1", "192.0.2.1", soc="a3")}
    _absorb(facts, {("h1", 3): (1, 1)},
            Outcome(job, CommandResult("h1", job.argv, -1, "", "", 0.1)))
    assert facts["h1"].devices[3].ip_error == "exited -1 with no output"
