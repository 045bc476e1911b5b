"""hccn_tool parsers on the verbatim samples of the reference (tests/data/hccn/) and variants."""

from __future__ import annotations

import pytest
from tests.captures import sample

from ascend_pd.errors import ParseError
from ascend_pd.hccn.failures import HccnToolError, classify
from ascend_pd.hccn.parse import (
    parse_gateway,
    parse_ip,
    parse_link,
    parse_lldp,
    parse_net_health,
    parse_netdetect,
    parse_tls,
    parse_vnic,
)
from ascend_pd.hccn.ping import parse_ping


def outputs(name: str) -> list[str]:
    """The command outputs of a capture that prefixes each with its command line."""
    blocks: list[list[str]] = []
    for line in sample(name).splitlines():
        if "hccn_tool" in line:
            blocks.append([])
        elif blocks:
            blocks[-1].append(line)
    return ["\n".join(b) + "\n" for b in blocks]


class TestIp:
    def test_capture_of_two_devices(self) -> None:
        first, second = outputs("s4.1_ip_success_a2_mindcluster_worker0.txt")
        ip = parse_ip(first)
        assert (ip.ipaddr, ip.netmask, ip.configured) == ("10.10.0.10", "255.255.255.0", True)
        assert parse_ip(second).ipaddr == "10.10.0.11"
        assert ip.raw == first

    def test_loop_output_keeps_every_pair(self) -> None:
        text = "".join(ln + "\n" for ln in sample("s4.1_ip_success_a2_mindie_loop.txt")
                       .splitlines()[1:] if ln != "...")
        ip = parse_ip(text)
        assert ip.ipaddr == "11.12.165.80"
        assert [p[0] for p in ip.pairs] == ["11.12.165.80", "11.12.165.81", "11.12.165.87"]

    def test_exit_13_is_not_configured(self) -> None:
        ip = parse_ip("", sample("s4.1_ip_no_ip_stderr.txt"), 13)
        assert not ip.configured
        assert ip.ipaddr is None

    def test_empty_stdout_capture_is_not_configured(self) -> None:
        empty = outputs("s4.1_ip_empty_stdout_capture.txt")[0]
        assert not parse_ip(empty).configured

    def test_space_after_colon_tab_padding_and_cr(self) -> None:
        ip = parse_ip("\tipaddr: 29.1.137.205\r\n\r\nnetmask:  255.255.0.0 \r\n")
        assert (ip.ipaddr, ip.netmask) == ("29.1.137.205", "255.255.0.0")

    def test_unexpected_line_is_a_parse_error_quoting_it(self) -> None:
        with pytest.raises(ParseError) as info:
            parse_ip("ipaddr:1.2.3.4\nsomething else\n")
        assert info.value.line == "something else"

    def test_other_failures_raise_a_classified_error(self) -> None:
        with pytest.raises(HccnToolError) as info:
            parse_ip("", "Get invalid device id.\n", 4)
        assert info.value.failure.kind == "invalid_device"


class TestVnicAndLink:
    def test_vnic_format_sample(self) -> None:
        text = "vnic link status: UP\nvnic ipaddr: 192.168.2.199\nvnic netmask: 255.255.255.0\n"
        assert sample("s4.2_vnic_hccl_guide_loop.txt").startswith(text)
        vnic = parse_vnic(text)
        assert (vnic.link, vnic.ipaddr, vnic.netmask) == ("UP", "192.168.2.199", "255.255.255.0")

    def test_vnic_failure(self) -> None:
        with pytest.raises(HccnToolError) as info:
            parse_vnic("", "Command execute failed!\n", 1)
        assert info.value.failure.kind == "execute_failed"

    def test_link_up_and_down_are_data(self) -> None:
        assert parse_link(sample("s4.3_link_mindie_loop.txt").splitlines()[0] + "\n").up
        assert parse_link("link status: DOWN\n").status == "DOWN"

    def test_vnic_line_never_satisfies_a_link_check(self) -> None:
        with pytest.raises(ParseError):
            parse_link("vnic link status: UP\n")


class TestNetHealth:
    @pytest.mark.parametrize(("text", "code", "severity"), [
        ("Success", 0, "ok"), ("Socket fail", 1, "fault"), ("Receive timeout", 2, "fault"),
        ("Unreachable", 3, "fault"), ("Time exceeded", 4, "fault"), ("Fault", 5, "fault"),
        ("Init", 6, "warning"), ("Thread error", 7, "fault"), ("Detect ip set", 8, "fault"),
        ("Unknown", 9, "fault"),
    ])
    def test_every_documented_state(self, text: str, code: int, severity: str) -> None:
        health = parse_net_health(f"net health status: {text}\n")
        assert (health.status, health.code, health.severity) == (text, code, severity)
        assert health.healthy == (text == "Success")

    def test_older_socket_failed_spelling(self) -> None:
        text = sample("s4.4_net_health_910a_socket_failed.txt").splitlines()[1] + "\n"
        assert parse_net_health(text).status == "Socket fail"

    def test_unknown_state_is_a_parse_error(self) -> None:
        with pytest.raises(ParseError):
            parse_net_health("net health status: Exploded\n")


class TestNetdetectGateway:
    def test_addr_and_address_labels(self) -> None:
        assert parse_netdetect(sample("s4.5_netdetect_addr.txt")).address == "11.12.165.1"
        assert parse_netdetect("netdetect address: 11.12.165.1\n").address == "11.12.165.1"

    def test_zero_address_means_unset(self) -> None:
        assert parse_netdetect("netdetect addr: 0.0.0.0\n").address is None

    def test_gateway_format(self) -> None:
        gw = parse_gateway("default gateway:29.1.0.1, Iface:eth3\n")
        assert (gw.gateway, gw.iface) == ("29.1.0.1", "eth3")

    def test_gateway_exit_2_is_none(self) -> None:
        gw = parse_gateway("", "Get gateway failed, because no gateway was preset there!\n", 2)
        assert gw.gateway is None


class TestTls:
    def test_current_firmware_per_device_lines(self) -> None:
        text = "".join(ln + "\n" for ln in
                       sample("s4.7_tls_current_mindie_grep_switch.txt").splitlines()
                       if ln != "...")
        tls = parse_tls(text)
        assert [(d.dev_id, d.switch, d.preconfigured) for d in tls.devices] == [
            (0, 0, 1), (1, 0, 1), (7, 0, 1)]
        assert tls.has_certificate
        assert not tls.enabled

    def test_old_firmware_without_preconfigured_skips_cert_blocks(self) -> None:
        tls = parse_tls(sample("s4.7_tls_old_firmware_hccl_guide.txt"))
        assert [(d.dev_id, d.switch, d.preconfigured) for d in tls.devices] == [
            (0, 0, None), (1, 0, None)]

    def test_mixed_node(self) -> None:
        tls = parse_tls(sample("s4.7_tls_mixed_hccl_guide.txt"))
        assert [d.switch for d in tls.devices] == [0, 1]
        assert tls.enabled

    def test_no_certificate_exit_14_is_disabled(self) -> None:
        tls = parse_tls("", "No certificate found, please set certs firstly!\n", 14)
        assert (tls.has_certificate, tls.enabled, tls.switch) == (False, False, 0)

    def test_no_switch_line_is_disabled(self) -> None:
        assert not parse_tls("\n").has_certificate


class TestLldp:
    def test_blog_capture(self) -> None:
        text = "".join(ln + "\n" for ln in sample("s4.10_lldp_blog_910b1.txt").splitlines()[1:])
        lldp = parse_lldp(text)
        assert lldp.port_id == "400GE1/1/20:2"
        assert lldp.system_name is None  # this capture has no System Name TLV

    def test_system_name(self) -> None:
        text = "Port ID TLV\n\tIfname: 200GE1/2/3\nSystem Name TLV\n\tleaf-01\n"
        assert (parse_lldp(text).port_id, parse_lldp(text).system_name) == ("200GE1/2/3",
                                                                            "leaf-01")

    def test_empty_is_no_neighbour(self) -> None:
        assert not parse_lldp("").has_neighbour


class TestPing:
    def test_roce_success_samples(self) -> None:
        for name, skip in (("s4.8_ping_success_mindie.txt", 0), ("s4.8_ping_success_blog.txt", 1)):
            text = "".join(ln + "\n" for ln in sample(name).splitlines()[skip:])
            ping = parse_ping(text)
            assert (ping.kind, ping.transmitted, ping.received, ping.loss_pct) == ("roce", 3, 3, 0)
            assert ping.healthy
            assert ping.packets[0].time_ms is not None
        assert parse_ping(sample("s4.8_ping_success_blog.txt").split("\n", 1)[1]).device == 3

    def test_partial_loss_doc_sample_with_letter_o(self) -> None:
        ping = parse_ping(sample("s4.8_ping_partial_loss_mindie_llm_doc.txt"),
                          "Command execute failed!\n", 1)
        assert (ping.received, ping.loss_pct, ping.healthy) == (2, 33.33, False)
        assert [p.ok for p in ping.packets] == [False, True, True]
        assert ping.packets[0].seq == 0

    def test_total_loss(self) -> None:
        ping = parse_ping(sample("s4.8_ping_total_loss.txt"), "Command execute failed!\n", 1)
        assert (ping.target, ping.received, ping.loss_pct) == ("10.0.0.9", 0, 100.0)

    def test_hccs_sample(self) -> None:
        ping = parse_ping(sample("s4.9_hccs_ping_success.txt"))
        assert (ping.kind, ping.received, ping.healthy) == ("hccs", 3, True)
        assert ping.packets[1].time_ms == pytest.approx(0.01102)
        assert dict(ping.stats_us)["TP95"] == pytest.approx(13.001)

    def test_hccs_bad_l1_plane_check_is_unhealthy(self) -> None:
        text = sample("s4.9_hccs_ping_success.txt").replace(
            "seq 1, time = 11.020us, L1 plane check result = 0x0",
            "seq 1, time = 11.020us, L1 plane check result = 0x4")
        assert not parse_ping(text).healthy

    def test_not_supported_is_a_failure_not_a_ping(self) -> None:
        with pytest.raises(HccnToolError) as info:
            parse_ping("The command is not supported on this product.\n", "", 13)
        assert info.value.failure.kind == "not_supported"


class TestClassify:
    """Message first, then exit code: the codes collide across error families."""

    def test_same_exit_13_two_meanings(self) -> None:
        assert classify("", "Get ipconf failed, because no ip was preset there!\n", 13).kind \
            == "no_ip"
        assert classify("The command is not supported on this product.\n", "", 13).kind \
            == "not_supported"

    def test_busy_is_on_stdout(self) -> None:
        failure = classify("hccn_tool is busy, please try again.\n", "", 11)
        assert failure.kind == "busy"
        assert failure.hint

    @pytest.mark.parametrize(("code", "kind"), [(12, "permission"), (77, "unknown")])
    def test_fallback_on_exit_code(self, code: int, kind: str) -> None:
        assert classify("", "something new\n", code).kind == kind
        assert classify("", "something new\n", code).message == "something new"

    def test_every_message_of_the_reference_table_is_known(self) -> None:
        table = sample("s3.4_exit_codes_table.md")
        for line in table.splitlines()[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            message = cells[3].split("`")[1] if "`" in cells[3] else ""
            if cells[0] == "success" or not message:
                continue
            assert classify("", message + "\n", 250).kind != "unknown", message
