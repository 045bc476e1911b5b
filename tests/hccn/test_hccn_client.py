"""HccnClient / NpuSmiClient over the in-process sim, and the fan-out helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from ascend_pd.errors import CommandTimeoutError
from ascend_pd.hccn import commands
from ascend_pd.hccn.client import HccnClient, parse_outcome, query_job
from ascend_pd.hccn.failures import HccnToolError
from ascend_pd.npusmi.client import NpuSmiClient
from ascend_pd.runners.fanout import RetryPolicy, RunnerPool, fan_out
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.sim.faults import apply_fault
from ascend_pd.sim.runner import make_sim_runner

TOOL = "/usr/local/Ascend/driver/tools/hccn_tool"


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    path = tmp_path / "sim.yaml"
    save_cluster(generate_cluster([("p0", "192.0.0.1"), ("d0", "192.0.0.2")], "a3"), path)
    return path


def test_argv_builders() -> None:
    assert commands.ip_get(TOOL, 3) == (TOOL, "-i", "3", "-ip", "-g")
    assert commands.tls_set(TOOL, 15, False) == (TOOL, "-i", "15", "-tls", "-s", "enable", "0")
    assert commands.ping("t", 0, "1.2.3.4", pkt=64) == (
        "t", "-i", "0", "-ping", "-g", "address", "1.2.3.4", "pkt", "64")
    assert commands.hccs_ping("t", 1, "192.168.2.199", count=5)[-2:] == ("cnt", "5")
    assert commands.query_of(commands.net_health_get("t", 12)) == ("net_health", 12)
    assert commands.query_of(commands.tls_set("t", 1, True)) is None
    with pytest.raises(ValueError):
        commands.link_get("t", 100)


def test_client_reads_one_host(cluster: Path) -> None:
    client = HccnClient(make_sim_runner(cluster, "p0"), TOOL)
    assert client.ip(0).ipaddr == "29.10.1.1"
    assert client.vnic(1).ipaddr == "192.168.2.198"
    assert client.link(2).up
    assert client.net_health(2).healthy
    assert client.netdetect(3).address == client.gateway(3).gateway == "29.10.1.254"
    assert client.lldp(4).port_id == "200GE1/1/5"
    assert client.ping(0, "29.10.2.1").healthy
    assert not client.ping(0, "29.10.1.2").healthy  # die pair
    assert client.hccs_ping(0, "192.168.3.199").healthy
    client.tls_set(5, True)
    assert client.tls(5).enabled
    with pytest.raises(HccnToolError) as info:
        client.ip(16)
    assert info.value.failure.kind == "invalid_device"
    assert "p0" in info.value.message


def test_client_retries_the_busy_lock(cluster: Path) -> None:
    apply_fault(cluster, "p0", "busy", device=0, value="2")
    client = HccnClient(make_sim_runner(cluster, "p0"), TOOL,
                        retry=RetryPolicy(attempts=4, base_delay_s=0.001))
    client.tls_set(0, False)
    assert client.run(commands.link_get(TOOL, 0)).attempts == 1


def test_npu_smi_client_enumerates_from_the_mapping(cluster: Path) -> None:
    npu = NpuSmiClient(make_sim_runner(cluster, "d0"), "npu-smi")
    mapping = npu.mapping()
    assert mapping.phy_ids == tuple(range(16))
    assert npu.soc() == "a3"
    spod = npu.spod_info(mapping.devices[5].card, mapping.devices[5].chip)
    assert (spod.server_index, spod.super_pod_id) == (3, 0)
    assert npu.board(0, 1).soc_name == "Ascend910_9392"
    assert npu.info().chips[15].phy_id == 15
    assert npu.info_list().total_count == 8


def test_fan_out_and_parse_outcomes(cluster: Path) -> None:
    apply_fault(cluster, "p0", "no-ip", device=2)
    apply_fault(cluster, "d0", "hang", device=1, value="ip")
    jobs = [query_job(host, TOOL, "ip", dev, timeout=0.3)
            for host in ("p0", "d0") for dev in range(4)]
    jobs.append(query_job("p0", TOOL, "ip", 42))
    jobs.append(query_job("d0", TOOL, "ping", 0, address="29.10.1.1"))
    with RunnerPool(lambda host: make_sim_runner(cluster, host)) as pool:
        readings = [parse_outcome(o) for o in fan_out(jobs, pool.get, per_host=4)]
    by_key = {(r.host, r.kind, r.device): r for r in readings}
    assert by_key[("p0", "ip", 0)].record.ipaddr == "29.10.1.1"  # type: ignore[union-attr]
    assert by_key[("p0", "ip", 2)].ok
    assert not by_key[("p0", "ip", 2)].record.configured
    assert isinstance(by_key[("d0", "ip", 1)].error, CommandTimeoutError)
    assert by_key[("p0", "ip", 42)].failure.kind == "invalid_device"  # type: ignore[union-attr]
    assert by_key[("d0", "ping", 0)].record.healthy  # type: ignore[union-attr]
    assert by_key[("d0", "ip", 3)].to_dict()["record"]["ipaddr"] == "29.10.2.4"  # type: ignore[index]
