"""The one finding type and its one printer: the forms users read, and the names other code
still builds findings with."""

from __future__ import annotations

from ascend_pd.doctor.checks import CheckResult
from ascend_pd.findings import Finding, Peer, at_key, host_check
from ascend_pd.netcheck.report import Finding as NetFinding
from ascend_pd.netcheck.report import device_finding
from ascend_pd.printer import Layout, finding_block, finding_line, render_findings, where_text
from ascend_pd.render.findings import Finding as PlanFinding
from ascend_pd.spec import parse_spec
from ascend_pd.spec.loader import key_line, with_line

SPEC = """\
version: 1
name: t
hosts:
  - {name: n0, address: 192.0.2.1, devices: [0, 1, 2, 3, 4, 5, 6, 7]}
model: {path: /models/m, served_name: m}
connector:
  type: mooncake
prefill:
  - {name: p, hosts: [n0], devices: [0, 1, 2, 3], tp: 4, port: 8100}
decode:
  - {name: d, hosts: [n0], devices: [4, 5, 6, 7], tp: 4, port: 8200,
     extra_args: ['--max-num-seqs', '8']}
"""


def test_every_former_constructor_builds_the_one_type() -> None:
    # Code written against the former per-command types keeps working for one release.
    assert PlanFinding("error", "connector.type", "bad", "fix it") == Finding(
        severity="error", check="", message="bad", fix="fix it", key="connector.type")
    assert PlanFinding(severity="warning", key="k", message="m", hint=None).fix == ""
    doctor = CheckResult(host="n0", check="ports", status="fail", observed="in use: 8100",
                         expected="free", fix="stop it")
    assert doctor == host_check("n0", "ports", "fail", "in use: 8100", "free", "stop it")
    assert (doctor.severity, CheckResult("n0", "disk", "warn", "low").severity,
            CheckResult("n0", "disk", "pass", "ok").severity) == ("error", "warning", "pass")
    peer = Peer("n1", 2, "10.0.0.2")
    assert NetFinding("n0", 3, "ping", "fault", "lost", "all", "re-test", peer) == device_finding(
        "n0", 3, "ping", "lost", "all", "re-test", peer=peer)
    assert device_finding("n0", None, "lldp", "none", "a neighbour", "cable",
                          warning=True).severity == "warning"
    assert all(type(f) is Finding for f in (at_key("error", "k", "m"),
                                             host_check("h", "c", "pass", "ok")))


def test_where_names_only_what_applies() -> None:
    def where(**fields: object) -> str:
        return where_text(Finding(severity="error", check="c", message="x", **fields))  # type: ignore[arg-type]

    assert where(host="node-d", device=3) == "node-d device 3"
    assert where(host="p", device=0, peer=Peer("d", 1, "10.0.0.1")) == (
        "p device 0 -> d/1 (10.0.0.1)")
    assert where(key="connector.type", line=7) == "connector.type (line 7)"
    assert where(file="decode-0@n1", line=22) == "decode-0@n1:22"
    assert where() == "cluster"


def test_the_printer_forms() -> None:
    f = Finding(severity="error", check="tls", message="tls switch[1]",
                expected="tls switch[0]", fix="hccn_tool -i 3 -tls -s enable 0", host="node-d",
                device=3)
    assert finding_line(f) == "error: node-d device 3: tls switch[1] — hccn_tool -i 3 -tls -s enable 0"
    assert finding_block(f).splitlines() == [
        "node-d device 3 tls: FAIL: tls switch[1]", "    expected: tls switch[0]",
        "    fix: hccn_tool -i 3 -tls -s enable 0"]
    ok = Finding(severity="pass", check="disk", message="90 GiB free", host="node-d")
    grid = Layout(grid=("host", "check", "status", "observed"), show=("error",),
                  grid_labels={"pass": "pass", "error": "fail"})
    text = render_findings([ok, f], grid, tail=["2 checks"]).splitlines()
    assert text[0].split() == ["HOST", "CHECK", "STATUS", "OBSERVED"]
    assert text[2].split() == ["node-d", "disk", "pass", "90", "GiB", "free"]
    assert text[3].split()[:3] == ["node-d", "tls", "fail"]
    assert text[4] == "node-d device 3 tls: FAIL: tls switch[1]" and text[-1] == "2 checks"


def test_a_json_finding_reads_back() -> None:
    f = Finding(severity="error", check="ping", message="lost", expected="all", fix="re-test",
                host="p", device=0,
                peer=Peer("d", 1, None), evidence=("a", "b"), cause="c", verify="v")
    assert Finding.from_dict(f.to_dict()) == f
    assert f.to_dict()["where"] == {"host": "p", "device": 0,
                                    "peer": {"host": "d", "device": 1, "address": None}}


def test_a_key_finding_gets_its_yaml_line() -> None:
    spec = parse_spec(SPEC)
    assert key_line(spec, "connector.type") == 7
    assert key_line(spec, "decode[0].extra_args[1]") == 12
    assert key_line(spec, "connector.mooncake_connector") == 6  # not in the file: its parent
    assert with_line(spec, at_key("error", "connector.type", "m")).line == 7
