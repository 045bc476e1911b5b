"""Sim cluster generation and files, fault knobs (library and `ascend-pd sim` CLI), A3 pings."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.errors import SpecError, UsageError
from ascend_pd.npusmi.soc import sdid_decode
from ascend_pd.sim.cluster import generate_cluster, load_cluster, save_cluster
from ascend_pd.sim.faults import apply_fault
from ascend_pd.sim.runner import make_sim_runner

TOOL = "hccn_tool"


def hccn(cluster: Path, host: str, *args: str) -> tuple[int, str, str]:
    result = make_sim_runner(cluster, host).run([TOOL, *args])
    return result.exit_code, result.stdout, result.stderr


class TestGenerate:
    def test_a2_addressing(self) -> None:
        cluster = generate_cluster([("p0", "192.0.0.1"), ("d0", "192.0.0.2")], "a2")
        dev = cluster.hosts[1].devices[7]
        assert (dev.ip, dev.netmask, dev.gateway, dev.netdetect) == (
            "29.10.2.8", "255.255.255.0", "29.10.2.254", "29.10.2.254")
        assert dev.vnic_ip is None
        ports = [d.lldp_port for h in cluster.hosts for d in h.devices]
        assert len(set(ports)) == len(ports) == 16

    def test_a3_vnic_and_sdid(self) -> None:
        cluster = generate_cluster([("p0", "a"), ("d0", "b")], "a3")
        host = cluster.hosts[1]
        assert len(host.devices) == 16
        assert host.server_index == 3
        dev = host.devices[13]
        assert (dev.card, dev.chip, dev.vnic_ip) == (6, 1, "192.168.3.186")
        decoded = sdid_decode(host.sdid(dev))
        assert (decoded.server_index, decoded.card, decoded.die, decoded.device_id) == (3, 6, 1, 13)

    def test_bad_sizes(self) -> None:
        with pytest.raises(ValueError):
            generate_cluster([("a", "b")], "a2", 16)

    def test_file_round_trip_and_errors(self, a3_pair: Path, tmp_path: Path) -> None:
        assert load_cluster(a3_pair) == generate_cluster(
            [("p0", "192.0.0.1"), ("d0", "192.0.0.2")], "a3")
        assert a3_pair.read_text().startswith("version: 1\n")
        bad = tmp_path / "bad.yaml"
        bad.write_text("version: 1\nhosts:\n- name: x\n  address: y\n  devices: []\n  colour: 1\n")
        with pytest.raises(SpecError) as info:
            load_cluster(bad)
        assert any("colour" in p for p in info.value.problems)
        with pytest.raises(SpecError, match="cannot read"):
            load_cluster(tmp_path / "missing.yaml")


def test_a_bad_cluster_file_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 2\n"
        "hosts:\n"
        "- name: n0\n"
        "  address: 10.0.0.1\n"
        "  soc: a5\n"
        "  server_index: 48\n"
        "  devices:\n"
        "  - {phy_id: 0, card: 0, link: SIDEWAYS, tls_switch: true}\n"
        "  - {phy_id: 0, card: 1, latency: {query_s: -1}}\n"
        "  - {card: 2, faults: {ping_loss: [{address: 1.2.3.4, lost: 0}]}}\n"
        "- {name: n0, address: 10.0.0.2, devices: []}\n")
    with pytest.raises(SpecError) as info:
        load_cluster(bad)
    problems = "\n".join(info.value.problems)
    for expected in ("version: must be one of 1", "hosts.0.soc: must be one of 'a2', 'a3'",
                     "hosts.0.server_index: must be <= 47",
                     "hosts.0.devices.0.link: must be one of 'UP', 'DOWN', got 'SIDEWAYS'",
                     "hosts.0.devices.0.tls_switch: expected int, got True",
                     "hosts.0.devices.1.latency.query_s: must be >= 0",
                     "hosts.0.devices.2.phy_id: required",
                     "hosts.0.devices.2.faults.ping_loss.0.lost: must be >= 1"):
        assert expected in problems, problems
    # Cross-field rules run where the fields themselves are fine.
    bad.write_text("hosts:\n- {name: a, address: x, devices: [{phy_id: 1, card: 0}, "
                   "{phy_id: 1, card: 1}]}\n- {name: a, address: y, devices: []}\n")
    with pytest.raises(SpecError) as info:
        load_cluster(bad)
    assert info.value.problems == ["hosts.0: host a: device phy ids repeat"]
    bad.write_text("hosts:\n- {name: a, address: x, devices: []}\n"
                   "- {name: a, address: y, devices: []}\n")
    with pytest.raises(SpecError) as info:
        load_cluster(bad)
    assert info.value.problems == ["(top level): host names repeat"]


def test_a_cluster_survives_a_round_trip_through_its_file(tmp_path: Path) -> None:
    cluster = generate_cluster([("p0", "10.0.0.1"), ("d0", "10.0.0.2")], "a3")
    cluster.hosts[0].devices[3].faults.hang.append("ping")
    path = tmp_path / "c.yaml"
    save_cluster(cluster, path)
    assert load_cluster(path) == cluster
    cluster.hosts[0].devices[0].link = "SIDEWAYS"  # type: ignore[assignment]
    with pytest.raises(SpecError, match="invalid sim cluster"):
        save_cluster(cluster, path)
    assert load_cluster(path).hosts[0].devices[0].link == "UP"  # the file kept its old text


class TestA3Pings:
    def test_die_pair_cannot_roce_ping(self, a3_pair: Path) -> None:
        code, out, err = hccn(a3_pair, "p0", "-i", "0", "-ping", "-g", "address", "29.10.1.2")
        assert (code, err) == (1, "Command execute failed!\n")
        assert "100.00% packet loss" in out
        assert hccn(a3_pair, "p0", "-i", "0", "-ping", "-g", "address", "29.10.1.3")[0] == 0
        assert hccn(a3_pair, "p0", "-i", "0", "-ping", "-g", "address", "29.10.2.2")[0] == 0

    def test_die_pair_can_hccs_ping_and_by_sdid(self, a3_pair: Path) -> None:
        code, _, _ = hccn(a3_pair, "p0", "-i", "0", "-hccs_ping", "-g", "address", "192.168.2.198")
        assert code == 0
        sdid = str(load_cluster(a3_pair).hosts[1].sdid(load_cluster(a3_pair).hosts[1].devices[4]))
        code, out, _ = hccn(a3_pair, "p0", "-i", "0", "-hccs_ping", "-g", "sdid", sdid, "cnt", "5")
        assert code == 0
        assert out.startswith(f"device 0 PING {sdid}\n\n")
        assert "5 packets transmitted, 5 received, 0.00% packets loss" in out


class TestFaults:
    def test_link_down_and_clear(self, a2_pair: Path) -> None:
        apply_fault(a2_pair, "p0", "link-down", device=3)
        assert hccn(a2_pair, "p0", "-i", "3", "-link", "-g")[1] == "link status: DOWN\n"
        assert hccn(a2_pair, "p0", "-i", "3", "-net_health", "-g")[1] == \
            "net health status: Fault\n"
        assert hccn(a2_pair, "p0", "-i", "2", "-link", "-g")[1] == "link status: UP\n"
        # The peer's link is down: pings to it are lost.
        assert hccn(a2_pair, "d0", "-i", "0", "-ping", "-g", "address", "29.10.1.4")[0] == 1
        apply_fault(a2_pair, "p0", "link-down", device=3, clear=True)
        assert hccn(a2_pair, "p0", "-i", "3", "-link", "-g")[1] == "link status: UP\n"
        assert hccn(a2_pair, "p0", "-i", "3", "-net_health", "-g")[1] == \
            "net health status: Success\n"

    @pytest.mark.parametrize("state", ["Receive timeout", "Init", "Detect ip set", "Unknown"])
    def test_net_health_states(self, a2_pair: Path, state: str) -> None:
        apply_fault(a2_pair, "d0", "net-health", device=1, value=state)
        assert hccn(a2_pair, "d0", "-i", "1", "-net_health", "-g")[1] == \
            f"net health status: {state}\n"

    def test_fault_beats_persisted_state_and_a_set_command_repairs_it(self, a2_pair: Path) -> None:
        hccn(a2_pair, "p0", "-i", "0", "-tls", "-s", "enable", "0")
        apply_fault(a2_pair, "p0", "tls-on")  # every device
        assert all("tls switch[1]" in hccn(a2_pair, "p0", "-i", str(d), "-tls", "-g")[1]
                   for d in range(8))
        assert hccn(a2_pair, "p0", "-i", "0", "-tls", "-s", "enable", "0")[1] == \
            "Cmd executed successfully!\n"
        assert "tls switch[0]" in hccn(a2_pair, "p0", "-i", "0", "-tls", "-g")[1]

    def test_no_ip_no_gateway_no_certificate(self, a2_pair: Path) -> None:
        for kind in ("no-ip", "no-gateway", "no-certificate"):
            apply_fault(a2_pair, "p0", kind, device=6)
        assert hccn(a2_pair, "p0", "-i", "6", "-ip", "-g")[0] == 13
        assert hccn(a2_pair, "p0", "-i", "6", "-gateway", "-g")[0] == 2
        assert hccn(a2_pair, "p0", "-i", "6", "-tls", "-g")[0] == 14
        # Remediation order of the runbook: IP first, then the gateway.
        assert hccn(a2_pair, "p0", "-i", "6", "-gateway", "-s", "gateway", "29.10.1.254")[0] == 26
        assert hccn(a2_pair, "p0", "-i", "6", "-ip", "-s", "address", "29.10.1.77", "netmask",
                    "255.255.255.0")[0] == 0
        assert hccn(a2_pair, "p0", "-i", "6", "-gateway", "-s", "gateway", "29.10.1.254")[0] == 0
        assert hccn(a2_pair, "p0", "-i", "6", "-ip", "-g")[1] == \
            "ipaddr:29.10.1.77\nnetmask:255.255.255.0\n"

    def test_busy_for_n_calls(self, a2_pair: Path) -> None:
        apply_fault(a2_pair, "p0", "busy", device=2, value="2")
        answers = [hccn(a2_pair, "p0", "-i", "2", "-link", "-g") for _ in range(3)]
        assert answers[:2] == [(11, "hccn_tool is busy, please try again.\n", "")] * 2
        assert answers[2] == (0, "link status: UP\n", "")
        apply_fault(a2_pair, "p0", "busy", device=2, value="1")  # re-arming resets the count
        assert hccn(a2_pair, "p0", "-i", "2", "-link", "-g")[0] == 11

    def test_ping_loss_and_latency(self, a2_pair: Path) -> None:
        apply_fault(a2_pair, "p0", "ping-loss", device=0, value="29.10.2.1:3")
        apply_fault(a2_pair, "p0", "latency-query", device=0, value="0.2")
        assert "0 received, 100.00% packet loss" in hccn(
            a2_pair, "p0", "-i", "0", "-ping", "-g", "address", "29.10.2.1")[1]
        start = time.monotonic()
        result = make_sim_runner(a2_pair, "p0").run([TOOL, "-i", "0", "-ip", "-g"])
        assert time.monotonic() - start >= 0.2
        assert result.duration_s >= 0.2
        apply_fault(a2_pair, "p0", "ping-loss", device=0, clear=True)
        assert hccn(a2_pair, "p0", "-i", "0", "-ping", "-g", "address", "29.10.2.1")[0] == 0

    def test_not_root_and_firmware_variants(self, a2_pair: Path) -> None:
        apply_fault(a2_pair, "p0", "not-root")
        assert hccn(a2_pair, "p0", "-i", "0", "-tls", "-s", "enable", "0")[0] == 12
        apply_fault(a2_pair, "p0", "fw-tls-no-preconfigured")
        assert "preconfigured" not in hccn(a2_pair, "p0", "-i", "0", "-tls", "-g")[1]
        apply_fault(a2_pair, "p0", "fw-netdetect-address")
        assert hccn(a2_pair, "p0", "-i", "0", "-netdetect", "-g")[1].startswith(
            "netdetect address: ")

    def test_unknown_things_are_usage_errors(self, a2_pair: Path) -> None:
        with pytest.raises(UsageError):
            apply_fault(a2_pair, "nope", "tls-on")
        with pytest.raises(UsageError):
            apply_fault(a2_pair, "p0", "tls-on", device=12)
        with pytest.raises(UsageError):
            apply_fault(a2_pair, "p0", "net-health", device=0, value="Exploded")


class TestCli:
    def test_init_fault_install(self, tmp_path: Path) -> None:
        runner = CliRunner()
        path = tmp_path / "c.yaml"
        result = runner.invoke(cli, ["sim", "init-cluster", "--host", "p0=10.0.0.1",
                                     "--host", "d0=10.0.0.2", "--soc", "a3", "-o", str(path)])
        assert result.exit_code == 0, result.output
        assert "2 a3 host(s), 32 devices" in result.output
        result = runner.invoke(cli, ["sim", "fault", "--cluster", str(path), "--host", "d0",
                                     "--device", "4", "--kind", "vnic-down", "--json"])
        assert json.loads(result.output)["data"]["devices"] == [4]
        assert hccn(path, "d0", "-i", "4", "-vnic", "-g")[1].startswith("vnic link status: DOWN")
        result = runner.invoke(cli, ["sim", "install-tools", str(tmp_path / "bin"), "--json"])
        assert sorted(json.loads(result.output)["data"]) == ["hccn_tool", "npu-smi", "nvidia-smi"]
        assert (tmp_path / "bin" / "npu-smi").stat().st_mode & 0o111

    def test_init_to_stdout_and_bad_host(self) -> None:
        runner = CliRunner()
        result = runner.invoke(cli, ["sim", "init-cluster", "--host", "a=1.2.3.4", "--json"])
        data = json.loads(result.output)["data"]
        assert data["path"] is None
        assert len(data["cluster"]["hosts"][0]["devices"]) == 8
        result = runner.invoke(cli, ["sim", "init-cluster", "--host", "just-a-name"])
        assert result.exit_code == 2
        assert "NAME=ADDRESS" in result.output
