"""The in-cluster preflight: the Job's own command, run against a simulated node root, prints
a report that `doctor --from-k8s-logs` reads back; a node whose Job printed none is an error
row for that node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from ascend_pd.k8s.preflight import SPEC_DIR, SPEC_FILE, preflight_files
from ascend_pd.spec import parse_spec
from tests.doctor.conftest import SimFactory, _clean_environ, sim_spec  # noqa: F401


def test_job_report_reads_back_into_the_doctor_table(sim_spec: SimFactory,  # noqa: F811
                                                     tmp_path: Path) -> None:
    _, spec_path = sim_spec(faults=["hccn_conf_missing"])
    spec = parse_spec(spec_path.read_text(), str(spec_path))
    files = {f.name: f.text for f in preflight_files(spec, "# test\n")}
    (job,) = list(yaml.safe_load_all(files["preflight/jobs.yaml"]))
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeName"] == "node0"
    assert pod["restartPolicy"] == "Never"
    # What the pod would mount at /etc/ascend-pd: the rendered spec.
    rendered = tmp_path / SPEC_FILE
    rendered.write_text(files[f"preflight/{SPEC_FILE}"])
    command = [str(rendered) if a == f"{SPEC_DIR}/{SPEC_FILE}" else a
               for a in pod["containers"][0]["command"]]
    assert command[:2] == ["ascend-pd", "doctor"]
    run = subprocess.run([sys.executable, "-m", "ascend_pd", *command[1:]],
                         capture_output=True, text=True, timeout=120, check=False)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "node0.json").write_text(run.stdout)
    (logs / "node1.json").write_text("Error from server (BadRequest): container is waiting\n")
    out = subprocess.run([sys.executable, "-m", "ascend_pd", "doctor", "--from-k8s-logs",
                          str(logs), "--json"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 1
    data = json.loads(out.stdout)["data"]
    hosts = {h["host"]: h for h in data["hosts"]}
    assert {c["check"]: c["severity"] for c in hosts["node0"]["findings"]}["hccn-conf"] == "error"
    assert "holds no doctor JSON report" in hosts["node1"]["error"]
    human = subprocess.run([sys.executable, "-m", "ascend_pd", "doctor", "--from-k8s-logs",
                            str(logs)], capture_output=True, text=True, timeout=60,
                           check=False).stdout
    assert "node0 hccn-conf: FAIL" in human
    assert "node1: probe failed" in human


def test_a_report_from_before_the_one_finding_type_still_reads(tmp_path: Path) -> None:
    # A Job image may run an older ascend-pd: its doctor JSON listed `checks` with status
    # pass / warn / fail. Its failing check must still fail the node, not vanish.
    old = {"ascend_pd_result_version": 1, "command": "doctor", "status": "findings",
           "exit_code": 1, "errors": [], "data": {"ok": False, "hosts": [{
               "host": "node0", "ok": False, "error": None, "facts": None, "checks": [
                   {"host": "node0", "check": "cann-env", "status": "pass",
                    "observed": "ASCEND_TOOLKIT_HOME=/x", "expected": "", "fix": ""},
                   {"host": "node0", "check": "hccn-conf", "status": "fail",
                    "observed": "/etc/hccn.conf missing", "expected": "present",
                    "fix": "mount it"}]}]}}
    (tmp_path / "node0.json").write_text(json.dumps(old))
    out = subprocess.run([sys.executable, "-m", "ascend_pd", "doctor", "--from-k8s-logs",
                          str(tmp_path), "--json"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 1, out.stderr
    (host,) = json.loads(out.stdout)["data"]["hosts"]
    assert [(f["check"], f["severity"]) for f in host["findings"]] == [
        ("cann-env", "pass"), ("hccn-conf", "error")]
