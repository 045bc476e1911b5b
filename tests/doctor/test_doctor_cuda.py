"""doctor on platform cuda hosts: real probe processes (LocalRunner) on a simulated GPU host
whose nvidia-smi is the stand-in answering from the sim cluster file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.doctor.conftest import free_port

from ascend_pd.doctor import DoctorReport, run_doctor
from ascend_pd.doctor.cuda import runtime_cuda
from ascend_pd.doctor.facts import parse_facts
from ascend_pd.doctor.simroot_cuda import CUDA_FAULTS, build_cuda_sysroot
from ascend_pd.runners.factory import runner_factory
from ascend_pd.runners.fanout import RunnerPool
from ascend_pd.sim.cluster import SimCluster, SimGpus, SimHost, save_cluster
from ascend_pd.spec import load_spec

CUDA_CHECKS = ["gpus", "gpu-driver", "python-packages", "vllm-torch", "model-config",
               "host-ip-on-nic", "ports", "disk"]


def cuda_host(tmp_path: Path, faults: tuple[str, ...] = (), **gpus: Any) -> Path:
    """A cuda spec (1P1D on one 8-GPU host, NIXL) over a simulated host; its path."""
    cluster = tmp_path / "sim.yaml"
    save_cluster(SimCluster(hosts=[SimHost(name="gpu0", address="192.0.2.11",
                                           gpus=SimGpus(**gpus))]), cluster)
    sim = build_cuda_sysroot(tmp_path / "root", cluster=cluster, host="gpu0", faults=faults)
    spec = {
        "version": 1, "name": "doctor-cuda", "platform": "cuda",
        "hosts": [{"name": "gpu0", "address": "192.0.2.11", "nic": "eth0",
                   "devices": list(range(8)), "env": sim.env}],
        "model": {"path": "/models/Qwen3-8B", "served_name": "qwen3", "attention": "gqa"},
        "connector": {"type": "nixl", "kv_port_base": free_port()},
        "prefill": [{"name": "prefill-0", "hosts": ["gpu0"], "devices": [0, 1, 2, 3], "tp": 4,
                     "port": free_port()}],
        "decode": [{"name": "decode-0", "hosts": ["gpu0"], "devices": [4, 5, 6, 7], "tp": 4,
                    "port": free_port()}],
    }
    path = tmp_path / "pd.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def doctor(spec_path: Path) -> DoctorReport:
    spec = load_spec(spec_path)
    with RunnerPool(runner_factory(spec, "local")) as pool:
        return run_doctor(spec, pool.get)


def by_check(report: DoctorReport) -> dict[str, Any]:
    return {c.check: c for c in report.checks}


def test_healthy_gpu_host_runs_the_gpu_checks_only(tmp_path: Path) -> None:
    report = doctor(cuda_host(tmp_path))
    assert [c.check for c in report.checks] == CUDA_CHECKS  # no CANN / hccn / npu-smi
    assert [(c.check, c.severity, c.message) for c in report.checks if c.severity != "pass"] == []
    checks = by_check(report)
    assert checks["gpus"].message.startswith("8 x NVIDIA A100-SXM4-80GB (81920 MiB)")
    assert "prefill-0 0,1,2,3 (TP 4 x DP-local 1)" in checks["gpus"].expected
    assert checks["gpu-driver"].message == ("driver 580.126.09, CUDA 13.0; torch uses CUDA "
                                             "12.8 (torch 2.9.0+cu128)")
    assert report.exit_code == 0


def test_a_missing_gpu_fails_with_the_renumbering_explained(tmp_path: Path) -> None:
    report = doctor(cuda_host(tmp_path, missing=[5]))
    gpus = by_check(report)["gpus"]
    assert gpus.severity == "error"
    assert gpus.message.startswith("7 x NVIDIA A100-SXM4-80GB")
    assert "GPU(s) 7 are not enumerated" in gpus.fix and "Xid 79" in gpus.fix
    assert {c.check for c in report.checks if c.severity == "error"} == {"gpus"}


def test_an_old_driver_fails_a_same_major_one_warns(tmp_path: Path) -> None:
    old = by_check(doctor(cuda_host(tmp_path / "a", driver_version="470.256.02",
                                    cuda_version="11.4")))["gpu-driver"]
    assert old.severity == "error"
    assert old.message.startswith("driver 470.256.02, CUDA 11.4; torch uses CUDA 12.8")
    assert "CUDA Version >= 12.8" in old.fix
    near = by_check(doctor(cuda_host(tmp_path / "b", driver_version="535.104.05",
                                     cuda_version="12.2")))["gpu-driver"]
    assert near.severity == "warning"


def test_nvml_mismatch_says_reboot(tmp_path: Path) -> None:
    report = doctor(cuda_host(tmp_path, nvml_library_version="580.126"))
    checks = by_check(report)
    assert checks["gpus"].severity == checks["gpu-driver"].severity == "error"
    assert checks["gpus"].message == ("nvidia-smi exited 18: Failed to initialize NVML: "
                                       "Driver/library version mismatch")
    assert "reboot" in checks["gpus"].fix


@pytest.mark.parametrize("fault", sorted(CUDA_FAULTS))
def test_each_host_fault_fails_its_check(tmp_path: Path, fault: str) -> None:
    report = doctor(cuda_host(tmp_path, faults=(fault,)))
    assert {c.check for c in report.checks if c.severity == "error"} == {CUDA_FAULTS[fault]}
    bad = next(c for c in report.checks if c.severity == "error")
    assert bad.fix


@pytest.mark.parametrize(("lines", "expected"), [
    (["py.torch=2.9.0+cu130"], ("13.0", "torch 2.9.0+cu130")),
    (["py.torch=2.9.0", "py.nvidia_cuda_runtime_cu12=12.8.90"],
     ("12.8", "nvidia-cuda-runtime-cu12 12.8.90")),
    (["py.torch=2.10.0", "py.nvidia_cuda_runtime=13.0.96"],
     ("13.0", "nvidia-cuda-runtime 13.0.96")),
    (["py.torch=2.9.0"], None),
])
def test_runtime_cuda_of_torch(lines: list[str], expected: tuple[str, str] | None) -> None:
    facts = parse_facts("\n".join(["probe.version=1", *lines]))
    assert runtime_cuda(facts) == expected


def test_deep_says_it_does_not_apply(tmp_path: Path) -> None:
    spec = load_spec(cuda_host(tmp_path))
    with RunnerPool(runner_factory(spec, "local")) as pool:
        report = run_doctor(spec, pool.get, deep=True)
    deep = by_check(report)["deep-installed"]
    assert (deep.severity, report.exit_code) == ("warning", 0)
    assert "upstream vLLM" in deep.message
