"""check-links over the in-process simulated cluster: each fault kind gives exactly its
findings, a healthy cluster exits 0, and --fix tls turns a TLS finding into a pass."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from ascend_pd.sim.faults import apply_fault
from tests.netcheck.conftest import keys, run, run_json

P, D = "node-p", "node-d"


def test_healthy_a2_exits_0_with_full_matrix(a2: tuple[Path, Path]) -> None:
    spec, _ = a2
    code, data = run_json("check-links", "-c", str(spec))
    assert code == 0
    assert data["schema"] == "ascend-pd/check-links/v2"
    assert data["ok"] is True and data["findings"] == []
    # 8 prefill x 8 decode devices, both directions.
    assert data["pings"] == {"mode": "full", "transport": "roce", "planned": 128, "run": 128,
                             "failed": 0, "skipped": 0, "excluded": []}
    assert {row["check"] for row in data["summary"]} == {
        "reach", "link", "net_health", "netdetect", "gateway", "ip", "tls", "lldp", "ping"}


def test_human_output_names_the_fix(a2: tuple[Path, Path]) -> None:
    spec, cluster = a2
    apply_fault(cluster, P, "tls-on", device=3)
    result = run("check-links", "-c", str(spec))
    assert result.exit_code == 1
    assert "node-p device 3 tls: FAIL: tls switch[1]" in result.output
    assert "fix: hccn_tool -i 3 -tls -s enable 0" in result.output


# (host, fault kind, device, value) -> the findings (host, device, check) it must produce.
A2_FAULTS = [
    ((D, "link-down", 5, None), {(D, 5, "link")}),
    ((P, "tls-on", 3, None), {(P, 3, "tls")}),
    ((D, "no-ip", 2, None), {(D, 2, "ip")}),
    ((D, "no-gateway", 4, None), {(D, 4, "gateway")}),
    ((P, "no-netdetect", 6, None), {(P, 6, "netdetect")}),
    ((P, "no-certificate", 1, None), set()),  # no certificate = TLS off, like the others
    ((D, "net-health", 7, "Receive timeout"), {(D, 7, "net_health")}),
    ((P, "busy", 0, "3"), set()),  # retried past the busy lock
    ((P, "ping-loss", 0, "29.10.2.1:1"), {(P, 0, "ping")}),
    ((P, "hang", 1, "link"), {(P, 1, "hang")}),
    ((D, "latency-query", 0, "0.05"), set()),
    ((D, "latency-ping", 0, "0.05"), set()),
    ((D, "latency-set", 0, "0.05"), set()),
    ((D, "not-root", None, None), set()),  # only set commands need root
    ((D, "fw-socket-failed", None, None), set()),
    ((D, "fw-tls-no-preconfigured", None, None), set()),
    ((D, "fw-netdetect-address", None, None), set()),
]


@pytest.mark.parametrize(("fault", "expected"), A2_FAULTS,
                         ids=[f"{f[1]}-{f[0]}" for f, _ in A2_FAULTS])
def test_each_fault_gives_exactly_its_findings(
    a2: tuple[Path, Path], fault: tuple[str, str, int | None, str | None],
    expected: set[tuple[str, int, str]],
) -> None:
    spec, cluster = a2
    host, kind, device, value = fault
    apply_fault(cluster, host, kind, device=device, value=value)
    code, data = run_json("check-links", "-c", str(spec), "--timeout", "0.5")
    assert keys(data) == expected
    assert code == (1 if expected else 0)
    for finding in data["findings"]:
        assert finding["message"] and finding["expected"] and finding["fix"]


def test_missing_ip_skips_the_pings_that_need_it(a2: tuple[Path, Path]) -> None:
    spec, cluster = a2
    apply_fault(cluster, D, "no-ip", device=2)
    _, data = run_json("check-links", "-c", str(spec))
    pings = [s for s in data["skipped"] if s["check"] == "ping"]
    # 8 prefill devices -> device 2, and device 2 -> 8 prefill devices.
    assert len(pings) == 16 == data["pings"]["skipped"]
    assert {s["reason"] for s in pings} == {"node-d device 2: no RoCE IP"}
    assert data["pings"]["failed"] == 0


def test_link_down_does_not_double_report(a2: tuple[Path, Path]) -> None:
    spec, cluster = a2
    apply_fault(cluster, D, "link-down", device=5)  # also sets net_health Fault, hides LLDP
    _, data = run_json("check-links", "-c", str(spec))
    assert {(s["check"], s["reason"]) for s in data["skipped"] if s["check"] != "ping"} == {
        ("net_health", "link DOWN"), ("lldp", "link DOWN")}


def test_net_health_init_is_a_warning(a2: tuple[Path, Path]) -> None:
    spec, cluster = a2
    apply_fault(cluster, D, "net-health", device=3, value="Init")
    code, data = run_json("check-links", "-c", str(spec))
    assert code == 0
    assert [(f["check"], f["severity"]) for f in data["findings"]] == [("net_health", "warning")]


def test_missing_lldp_warns_unless_required(a2: tuple[Path, Path]) -> None:
    spec, cluster = a2
    doc = yaml.safe_load(cluster.read_text())
    doc["hosts"][0]["devices"][2]["lldp_port"] = None
    cluster.write_text(yaml.safe_dump(doc))
    code, data = run_json("check-links", "-c", str(spec))
    assert code == 0 and keys(data) == {(P, 2, "lldp")}
    code, data = run_json("check-links", "-c", str(spec), "--require-lldp")
    assert code == 1 and data["findings"][0]["severity"] == "error"


def test_fix_tls_turns_the_finding_into_a_pass(a2: tuple[Path, Path]) -> None:
    spec, cluster = a2
    apply_fault(cluster, P, "tls-on", device=3)
    apply_fault(cluster, D, "tls-on", device=0)
    declined = run("check-links", "-c", str(spec), "--fix", "tls", input="n\n")
    assert declined.exit_code == 1 and "Set TLS enable 0 on 2 device(s)" in declined.output
    code, data = run_json("check-links", "-c", str(spec), "--fix", "tls", "--yes")
    assert code == 0 and data["findings"] == []
    assert data["fix"] == {"target": 0, "failed": [],
                           "changed": [{"host": D, "device": 0}, {"host": P, "device": 3}]}
    assert run("check-links", "-c", str(spec)).exit_code == 0  # the change persisted


def test_fix_tls_majority_and_not_root(a2: tuple[Path, Path]) -> None:
    spec, cluster = a2
    for dev in range(8):
        apply_fault(cluster, P, "tls-on", device=dev)
    for dev in range(1, 8):
        apply_fault(cluster, D, "tls-on", device=dev)
    apply_fault(cluster, D, "not-root")
    code, data = run_json("check-links", "-c", str(spec), "--fix", "tls=majority", "--yes")
    assert code == 1
    assert data["fix"]["target"] == 1
    assert [(f["host"], f["device"]) for f in data["fix"]["failed"]] == [(D, 0)]
    assert "root" in data["fix"]["failed"][0]["hint"]
    assert keys(data) == {(D, 0, "tls")}


def test_fix_in_json_mode_needs_yes(a2: tuple[Path, Path]) -> None:
    spec, _ = a2
    assert run("check-links", "-c", str(spec), "--fix", "tls", "--json").exit_code == 2


def test_a_hung_host_is_one_finding_and_does_not_stall(a2: tuple[Path, Path]) -> None:
    spec, cluster = a2
    apply_fault(cluster, D, "hang", value="*")
    start = time.monotonic()
    code, data = run_json("check-links", "-c", str(spec), "--timeout", "0.3")
    assert time.monotonic() - start < 5
    assert code == 1
    assert keys(data) == {(D, None, "reach")}
    assert data["pings"]["skipped"] == 128


def test_ranktable_ips_must_be_live(a2: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ = a2
    table = tmp_path / "rt.json"
    assert run("gen-ranktable", "-c", str(spec), "-o", str(table)).exit_code == 0
    assert run("check-links", "-c", str(spec), "--ranktable", str(table)).exit_code == 0
    text = table.read_text().replace('"29.10.2.4"', '"29.10.2.99"')
    table.write_text(text)
    code, data = run_json("check-links", "-c", str(spec), "--ranktable", str(table))
    assert code == 1 and keys(data) == {(D, 3, "ip")}
    assert data["findings"][0]["expected"] == "ipaddr:29.10.2.99 (the ranktable)"


A3_FAULTS = [
    ((D, "vnic-down", 9, None), {(D, 9, "vnic")}),
    ((P, "ping-loss", 4, "192.168.3.195:3"), {(P, 4, "ping")}),
    ((P, "tls-on", 15, None), {(P, 15, "tls")}),
]


@pytest.mark.parametrize(("fault", "expected"), A3_FAULTS, ids=[f[1] for f, _ in A3_FAULTS])
def test_a3_faults(a3: tuple[Path, Path], fault: tuple[str, str, int, str | None],
                   expected: set[tuple[str, int, str]]) -> None:
    spec, cluster = a3
    host, kind, device, value = fault
    apply_fault(cluster, host, kind, device=device, value=value)
    code, data = run_json("check-links", "-c", str(spec), "--ping", "plane")
    assert data["pings"]["transport"] == "hccs"
    assert keys(data) == expected and code == 1


def test_a3_healthy_and_die_pairs_excluded_over_roce(tmp_path: Path, a3: tuple[Path, Path]) -> None:
    spec, _ = a3
    code, data = run_json("check-links", "-c", str(spec), "--ping", "plane")
    assert code == 0 and data["pings"]["run"] == 32
    # One host, prefill on die 0 of each card and decode on die 1: RoCE cannot join them.
    doc = yaml.safe_load(spec.read_text())
    doc["hosts"] = doc["hosts"][:1]
    doc["prefill"][0].update(hosts=[P], devices=[0, 2, 4, 6], tp=4)
    doc["decode"][0].update(hosts=[P], devices=[1, 3, 5, 7], tp=4)
    single = tmp_path / "single.yaml"
    single.write_text(yaml.safe_dump(doc))
    code, data = run_json("check-links", "-c", str(single), "--transport", "roce")
    assert code == 0, data["findings"]
    assert len(data["pings"]["excluded"]) == 8 and data["pings"]["run"] == 24
