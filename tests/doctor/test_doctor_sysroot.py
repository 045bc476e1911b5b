"""Doctor over real LocalRunner processes on simulated hosts: each fault knob is reported."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ascend_pd.doctor import CHECKS, DoctorReport, run_doctor
from ascend_pd.doctor.simroot import FAULTS, SimHost
from ascend_pd.runners.factory import runner_factory
from ascend_pd.runners.fanout import RunnerPool
from ascend_pd.spec import load_spec

SimFactory = Callable[..., tuple[SimHost, Path]]


def doctor(spec_path: Path) -> DoctorReport:
    spec = load_spec(spec_path)
    with RunnerPool(runner_factory(spec, "local")) as pool:
        return run_doctor(spec, pool.get)


def failing(report: DoctorReport) -> set[str]:
    return {c.check for c in report.checks if c.severity == "error"}


def test_healthy_host_passes_every_check(sim_spec: SimFactory) -> None:
    _, spec = sim_spec()
    report = doctor(spec)
    assert [(c.check, c.severity) for c in report.checks if c.severity != "pass"] == []
    assert len(report.checks) == len(CHECKS) == 17
    assert report.exit_code == 0


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_fails_its_check(sim_spec: SimFactory, fault: str) -> None:
    _, spec = sim_spec(faults=[fault])
    report = doctor(spec)
    assert failing(report) == {FAULTS[fault]}
    assert report.exit_code == 1
    bad = next(c for c in report.checks if c.severity == "error")
    assert bad.fix, f"{bad.check} must say how to fix it"


def test_busy_port_is_reported_with_its_purpose(sim_spec: SimFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        busy = int(sock.getsockname()[1])
        _, spec = sim_spec(ports=[busy, busy + 1 if busy < 65535 else busy - 1])
        report = doctor(spec)
    assert failing(report) == {"ports"}
    ports = next(c for c in report.checks if c.check == "ports")
    assert f"{busy} (the API port of 'prefill-0')" in ports.message


def test_fault_details_read_like_a_real_host(sim_spec: SimFactory) -> None:
    host, spec = sim_spec(faults=["nic_without_address", "float16_dtype", "npu_unhealthy"])
    report = doctor(spec)
    by_name = {c.check: c for c in report.checks}
    assert by_name["host-ip-on-nic"].message == "eth0: no IPv4 address"
    assert "192.0.2.11" in by_name["host-ip-on-nic"].expected
    assert "bfloat16" in by_name["model-dtype"].fix
    assert by_name["npu-health"].message == "device 3: Alarm"
    # paths are shown as on the host, without the simulated tree's prefix
    assert str(host.root) not in json.dumps([c.to_dict() for c in report.checks])


def test_quantization_none_with_w8a8_weights_warns(sim_spec: SimFactory) -> None:
    _, spec = sim_spec(quantization="none")
    report = doctor(spec)
    dtype = next(c for c in report.checks if c.check == "model-dtype")
    assert dtype.severity == "warning"
    assert "out of memory" in dtype.fix
    assert report.exit_code == 0


def test_docker_runtime_says_hccn_conf_must_be_mounted(sim_spec: SimFactory) -> None:
    _, spec = sim_spec(runtime="docker")
    hccn = next(c for c in doctor(spec).checks if c.check == "hccn-conf")
    assert hccn.severity == "pass"
    assert "-v /etc/hccn.conf:/etc/hccn.conf:ro" in hccn.expected


def test_cli_json_and_exit_code(sim_spec: SimFactory) -> None:
    _, spec = sim_spec(faults=["hccn_conf_missing"])
    proc = subprocess.run(
        [sys.executable, "-m", "ascend_pd", "doctor", "-c", str(spec), "--backend", "local",
         "--all", "--json"], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["command"] == "doctor"
    assert doc["data"]["summary"] == {"error": 1, "warning": 0, "info": 0, "pass": 16,
                                      "host_errors": 0}
    (host,) = doc["data"]["hosts"]
    assert host["facts"]["hccn_conf"] == "absent"


def test_cli_human_output_lists_fix(sim_spec: SimFactory) -> None:
    _, spec = sim_spec(faults=["low_disk"])
    proc = subprocess.run(
        [sys.executable, "-m", "ascend_pd", "doctor", "-c", str(spec), "--backend", "local",
         "--host", "node0"], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1
    assert "node0 disk: FAIL: /var/lib/ascend-pd: 0.5 GiB free" in proc.stdout
    assert "doctor: 1 host(s), 16 pass, 0 warn, 1 fail" in proc.stdout


def test_unknown_host_is_a_usage_error(sim_spec: SimFactory) -> None:
    _, spec = sim_spec()
    proc = subprocess.run(
        [sys.executable, "-m", "ascend_pd", "doctor", "-c", str(spec), "--backend", "local",
         "--host", "nodeX"], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2
    assert "use one of: node0" in proc.stderr


def test_a_0_23_0_post1_host_on_cann_8_3_rc2_fails_it_needs_9_1_0(sim_spec: SimFactory) -> None:
    # The current stable release, on the CANN of the 0.11/0.12 line.
    _, spec = sim_spec(release="0.23.0.post1", cann_version="8.3.RC2")
    by_name = {c.check: c for c in doctor(spec).checks}
    cann = by_name["cann-version"]
    assert (cann.severity, cann.message) == ("error", "CANN 8.3.RC2")
    assert "CANN >= 9.1.0" in cann.expected
    # the host's packages are the release's own row: torch-npu build and vLLM pair pass
    assert by_name["torch-npu-build"].message == "torch_npu 2.10.0.post4"
    assert by_name["torch-npu-build"].severity == "pass"
    assert "mooncake-transfer-engine-npu 0.3.11.post1" in by_name["python-packages"].message


def test_a_connector_the_installed_release_does_not_register_fails(sim_spec: SimFactory) -> None:
    _, spec = sim_spec(release="0.23.0.post1", connector="llmdatadist", version="0.11.0")
    report = doctor(spec)
    connector = next(c for c in report.checks if c.check == "connector")
    assert connector.severity == "error"
    assert "LLMDataDistCMgrConnector on vllm-ascend 0.23.0.post1 (installed)" in connector.message
    assert report.exit_code == 1
