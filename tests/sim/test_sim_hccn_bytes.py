"""The simulated hccn_tool against the reference, byte for byte (stdout, stderr, exit code).

Expected text comes from tests/data/hccn (verbatim captures and hccn_tool/tool.c's messages),
never from the simulator itself.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.captures import sample

from ascend_pd.sim.cluster import SimCluster, SimHost, generate_cluster
from ascend_pd.sim.hccn_core import SimReply, simulate_hccn
from ascend_pd.sim.runner import make_sim_runner

TOOL = "/usr/local/Ascend/driver/tools/hccn_tool"

def lines_of(name: str, *, skip: int = 0) -> list[str]:
    """The sample's lines after ``skip`` leading ones, without `...` elision lines."""
    return [ln for ln in sample(name).splitlines()[skip:] if ln.strip() != "..."]


def a2_host(**changes: object) -> SimHost:
    host = generate_cluster([("n0", "192.0.0.1")], "a2").hosts[0]
    return dataclasses.replace(host, **changes)


def a3_host() -> SimHost:
    return generate_cluster([("n0", "192.0.0.1")], "a3").hosts[0]


def run(host: SimHost, *args: str) -> SimReply:
    return simulate_hccn([TOOL, *args], host)


def joined(lines: list[str]) -> str:
    return "".join(f"{ln}\n" for ln in lines)


class TestGets:
    def test_ip_matches_the_worker0_capture(self) -> None:
        host = a2_host()
        for dev, ip in ((0, "10.10.0.10"), (1, "10.10.0.11")):
            host.devices[dev].ip = ip
        text = sample("s4.1_ip_success_a2_mindcluster_worker0.txt").split("\n")
        assert run(host, "-i", "0", "-ip", "-g").stdout == joined(text[1:3])
        assert run(host, "-i", "1", "-ip", "-g").stdout == joined(text[5:7])

    def test_ip_loop_matches_the_mindie_runbook(self) -> None:
        host = a2_host()
        for dev in host.devices:
            dev.ip = f"11.12.165.{80 + dev.phy_id}"
        out = "".join(run(host, "-i", str(d), "-ip", "-g").stdout for d in (0, 1, 7))
        assert out == joined(lines_of("s4.1_ip_success_a2_mindie_loop.txt", skip=1))

    def test_no_ip(self) -> None:
        host = a2_host()
        host.devices[2].ip = None
        reply = run(host, "-i", "2", "-ip", "-g")
        assert reply.as_tuple() == (13, "", sample("s4.1_ip_no_ip_stderr.txt"), 0.0)

    def test_vnic_loop_matches_the_hccl_guide(self) -> None:
        host = a3_host()
        out = "".join(run(host, "-i", str(d), "-vnic", "-g").stdout for d in (0, 1, 7))
        assert out == joined(lines_of("s4.2_vnic_hccl_guide_loop.txt"))

    def test_link_and_health(self) -> None:
        host = a2_host()
        assert run(host, "-i", "0", "-link", "-g").stdout == \
            lines_of("s4.3_link_mindie_loop.txt")[0] + "\n"
        host.devices[0].net_health = "Socket fail"
        assert run(host, "-i", "0", "-net_health", "-g").stdout == \
            "net health status: Socket fail\n"
        old = dataclasses.replace(
            host, firmware=dataclasses.replace(host.firmware, socket_failed=True))
        expected = sample("s4.4_net_health_910a_socket_failed.txt").splitlines()[1].strip()
        assert run(old, "-i", "0", "-net_health", "-g").stdout == expected + "\n"

    def test_netdetect_both_labels(self) -> None:
        host = a2_host()
        host.devices[0].netdetect = "11.12.165.1"
        assert run(host, "-i", "0", "-netdetect", "-g").stdout == sample("s4.5_netdetect_addr.txt")
        host.firmware.netdetect_address_label = True
        assert run(host, "-i", "0", "-netdetect", "-g").stdout == "netdetect address: 11.12.165.1\n"
        host.devices[0].netdetect = None
        assert run(host, "-i", "0", "-netdetect", "-g").stdout == "netdetect address: 0.0.0.0\n"

    def test_gateway(self) -> None:
        host = a2_host()
        host.devices[3].gateway = "29.1.0.1"
        # hccn_tool format: "default gateway:%s, Iface:eth%d"
        assert run(host, "-i", "3", "-gateway", "-g").stdout == \
            "default gateway:29.1.0.1, Iface:eth3\n"

    def test_tls_current_firmware(self) -> None:
        host = a2_host()
        out = "".join(run(host, "-i", str(d), "-tls", "-g").stdout for d in (0, 1, 7))
        switch_lines = [ln for ln in out.splitlines() if "switch" in ln]
        assert switch_lines == lines_of("s4.7_tls_current_mindie_grep_switch.txt")

    def test_tls_older_firmware_with_certificate_listing(self) -> None:
        host = a2_host()
        host.firmware.tls_without_preconfigured = True
        out = run(host, "-i", "0", "-tls", "-g").stdout
        # The guide's capture shows the tool's TABs expanded by copy and paste.
        expected = sample("s4.7_tls_old_firmware_hccl_guide.txt").splitlines()[:9]
        assert out.expandtabs(8).splitlines() == expected

    def test_tls_mixed_node(self) -> None:
        host = a2_host()
        host.devices[1].tls_switch = 1
        out = "".join(run(host, "-i", str(d), "-tls", "-g").stdout for d in (0, 1))
        assert [ln for ln in out.splitlines() if "switch" in ln] == \
            lines_of("s4.7_tls_mixed_hccl_guide.txt")

    def test_lldp_ports(self) -> None:
        host = a2_host()
        ports = {0: "400GE1/1/5:1", 1: "400GE1/1/5:2", 2: "400GE1/2/5:1", 7: "400GE1/4/5:2"}
        for dev, port in ports.items():
            host.devices[dev].lldp_port = port
        out = "".join(run(host, "-i", str(d), "-lldp", "-g").stdout for d in ports)
        assert [ln for ln in out.splitlines() if "Ifname" in ln] == \
            lines_of("s4.10_lldp_mindie_grep_ifname.txt")
        host.devices[0].lldp_port = "400GE1/1/20:2"
        blog = sample("s4.10_lldp_blog_910b1.txt").splitlines()
        out = run(host, "-i", "0", "-lldp", "-g").stdout
        assert out.startswith(blog[1] + "\n\tMAC: ")
        assert joined(blog[3:5]) in out
        assert out.endswith(joined(blog[-3:]))


def _times(text: str) -> str:
    text = re.sub(r"time=[\d.]+ms", "time=<t>ms", text)
    return re.sub(r"time (= )?[\d.]+us", r"time \1<t>us", text.replace("seq=O", "seq=0"))


class TestPing:
    @pytest.fixture
    def runbook(self, write_cluster: Callable[[SimCluster], Path]) -> Path:
        cluster = generate_cluster([("n0", "192.0.0.1"), ("n1", "192.0.0.2")], "a2")
        for dev in cluster.hosts[0].devices:
            dev.ip = f"11.12.165.{80 + dev.phy_id}"
            dev.gateway = dev.netdetect = "11.12.165.1"
        return write_cluster(cluster)

    def test_success_format(self, runbook: Path) -> None:
        result = make_sim_runner(runbook, "n0").run(
            [TOOL, "-i", "0", "-ping", "-g", "address", "11.12.165.80"])
        assert (result.exit_code, result.stderr) == (0, "")
        assert _times(result.stdout) == _times(sample("s4.8_ping_success_mindie.txt"))

    def test_partial_loss_prints_stats_then_fails(self, runbook: Path) -> None:
        from ascend_pd.sim.faults import apply_fault

        apply_fault(runbook, "n0", "ping-loss", device=0, value="11.12.165.81:1")
        result = make_sim_runner(runbook, "n0").run(
            [TOOL, "-i", "0", "-ping", "-g", "address", "11.12.165.81"])
        assert (result.exit_code, result.stderr) == (1, "Command execute failed!\n")
        # The published sample leaves out the `device 0 PING` line.
        assert _times(result.stdout.split("\n", 1)[1]) == \
            _times(sample("s4.8_ping_partial_loss_mindie_llm_doc.txt"))

    def test_unknown_target_total_loss(self, runbook: Path) -> None:
        result = make_sim_runner(runbook, "n0").run(
            [TOOL, "-i", "0", "-ping", "-g", "address", "10.0.0.9"])
        assert (result.exit_code, result.stdout, result.stderr) == (
            1, sample("s4.8_ping_total_loss.txt"), "Command execute failed!\n")

    def test_hccs_ping_format(self, a3_pair: Path) -> None:
        result = make_sim_runner(a3_pair, "p0").run(
            [TOOL, "-i", "0", "-hccs_ping", "-g", "address", "192.168.2.198"])
        assert (result.exit_code, result.stderr) == (0, "")
        assert _times(result.stdout) == _times(sample("s4.9_hccs_ping_success.txt"))


def _table() -> dict[str, tuple[int, list[str], str]]:
    rows = {}
    for line in sample("s3.4_exit_codes_table.md").splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = (int(cells[2].strip("*")), cells[3].split("`")[1::2], cells[4])
    return rows


def _broken() -> SimHost:
    host = a2_host()
    host.devices[1].has_certificate = False
    host.devices[2].ip = None
    host.devices[3].gateway = None
    host.devices[4].link = "DOWN"
    return host


# situation (the error message it prints) -> argv after the tool
CASES: dict[str, list[str]] = {
    "first arg is not": ["-x", "0"],
    "no arguments": [],
    "unknown major option": ["-i", "0", "-lnk", "-g"],
    "bad `-i`": ["-i", "123", "-ip", "-g"],
    "an argument longer than 900": ["-i", "0", "-ping", "-g", "address", "1" * 901],
    "wrong sub-option": ["-i", "0", "-link", "-x"],
    "wrong argument count": ["-i", "0", "-link", "-g", "extra"],
    "invalid IP given": ["-i", "0", "-ip", "-s", "address", "300.1.1.1", "netmask",
                         "255.255.255.0"],
    "IP conflict": ["-i", "0", "-ip", "-s", "address", "192.168.1.5", "netmask", "255.255.255.0"],
    "gateway not in the IP's subnet": ["-i", "0", "-gateway", "-s", "gateway", "10.9.9.9"],
    "`-tls -g` with no certificates": ["-i", "1", "-tls", "-g"],
    "`-tls -s enable X` with X not 0/1": ["-i", "0", "-tls", "-s", "enable", "2"],
    "command not supported on this product": ["-i", "0", "-hccs_ping", "-g", "address",
                                              "192.168.2.198"],
    "gateway set without an IP": ["-i", "2", "-gateway", "-s", "gateway", "29.10.1.254"],
    "broadcast address given": ["-i", "0", "-netdetect", "-s", "address", "29.10.1.255"],
    "DSMI/driver call failed": ["-i", "0", "-vnic", "-g"],
    "`-gateway -g`, no gateway": ["-i", "3", "-gateway", "-g"],
    "`-ip -g`, no IP configured": ["-i", "2", "-ip", "-g"],
    "a command that needs the link": ["-i", "4", "-ping", "-g", "address", "29.10.1.1"],
}


@pytest.mark.parametrize("situation", list(CASES))
def test_error_rows_of_the_reference_table(situation: str) -> None:
    row = next(v for k, v in _table().items() if k.startswith(situation))
    exit_code, messages, stream = row
    reply = run(_broken(), *CASES[situation])
    assert reply.exit_code == exit_code
    if stream.startswith("stderr + stdout"):
        assert reply.stderr == messages[0] + "\n"
        assert reply.stdout.startswith("[ hccn_tool -i devid -")
        assert "needs the following parameters:" in reply.stdout.splitlines()[0]
    elif "stdout" in stream:
        assert (reply.stdout, reply.stderr) == (messages[0] + "\n", "")
    else:
        assert (reply.stdout, reply.stderr) == ("", joined(messages))


def test_permission_denied_row() -> None:
    exit_code, messages, _ = next(v for k, v in _table().items() if k.startswith("not root"))
    reply = run(a2_host(root=False), "-i", "0", "-tls", "-s", "enable", "0")
    assert (reply.exit_code, reply.stderr) == (exit_code, messages[0] + "\n")


@pytest.mark.parametrize(("args", "attr", "help_file"), [
    (["-i", "0", "-link", "-x"], "link", "s4.3_link_help.txt"),
    (["-i", "0", "-ip"], "ip", "s4.1_ip_help.txt"),
    (["-i", "0", "-gateway", "-s"], "gateway", "s4.6_gateway_help.txt"),
    (["-i", "0", "-netdetect", "-x"], "netdetect", "s4.5_netdetect_help.txt"),
    (["-i", "0", "-tls", "-s", "enable", "5"], "tls", "s4.7_tls_help.txt"),
    (["-i", "0", "-ping", "-g"], "ping", "s4.8_ping_help.txt"),
    (["-i", "0", "-hccs_ping", "-g", "cnt"], "hccs_ping", "s4.9_hccs_ping_help.txt"),
])
def test_help_block_after_parameter_errors(args: list[str], attr: str, help_file: str) -> None:
    host = a3_host()
    reply = run(host, *args)
    header = f"[ hccn_tool -i devid -{attr} ] needs the following parameters:\n"
    assert reply.stdout == header + joined(lines_of(help_file))
    assert reply.exit_code in (3, 4, 16)


def test_full_help_lists_every_block() -> None:
    reply = run(a2_host(), "-h")
    assert reply.exit_code == 0
    assert reply.stderr == ""
    for name in ("s4.1_ip_help.txt", "s4.3_link_help.txt", "s4.9_hccs_ping_help.txt"):
        assert joined(lines_of(name)) in reply.stdout


def test_invalid_device_shapes() -> None:
    for dev in ("123", "x", "-1", "9"):  # 9 is well-formed but absent on an 8-device A2
        assert run(a2_host(), "-i", dev, "-ip", "-g").as_tuple() == (
            4, "", "Get invalid device id.\n", 0.0)
