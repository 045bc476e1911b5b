"""doctor on platform cuda over SSH: the probe and the nvidia-smi stand-in run as real
processes in each host's namespace; one host has lost a GPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.doctor.simroot_cuda import build_cuda_sysroot
from ascend_pd.sim.cluster import SimCluster, SimGpus, SimHost, save_cluster

pytestmark = pytest.mark.rig


def test_doctor_cuda_over_ssh(rig: Any, tmp_path: Path) -> None:
    spec_hosts = rig.spec_hosts()[:2]
    cluster = tmp_path / "gpus.yaml"
    save_cluster(SimCluster(hosts=[
        SimHost(name=h["name"], address=h["address"],
                gpus=SimGpus(missing=[2] if i == 1 else [])) for i, h in enumerate(spec_hosts)]),
        cluster)
    hosts = []
    for i, spec_host in enumerate(spec_hosts):
        root = build_cuda_sysroot(tmp_path / f"root{i}", cluster=cluster, host=spec_host["name"],
                                  nics={"eth0": [f"{spec_host['address']}/24"]})
        hosts.append({**spec_host, "env": root.env})
    p, d = (h["name"] for h in hosts)
    spec = {
        "name": "doctor-cuda-rig", "platform": "cuda", "backend": "ssh", "ssh": rig.ssh_spec(),
        "hosts": hosts,
        "model": {"path": "/models/Qwen3-8B", "served_name": "q", "attention": "gqa"},
        "connector": {"type": "nixl"},
        "prefill": [{"name": "p0", "hosts": [p], "devices": list(range(8)), "tp": 8,
                     "port": 8100}],
        "decode": [{"name": "d0", "hosts": [d], "devices": list(range(8)), "tp": 8,
                    "port": 8200}],
    }
    path = tmp_path / "pd.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["doctor", "-c", str(path), "--all", "--json"])
    assert result.exit_code == 1, result.output
    by_host = {h["host"]: h for h in json.loads(result.output)["data"]["hosts"]}
    assert by_host[p]["ok"] is True, by_host[p]
    failed = {c["check"]: c for c in by_host[d]["findings"] if c["severity"] != "pass"}
    assert list(failed) == ["gpus"]
    assert failed["gpus"]["message"].startswith("7 x NVIDIA A100-SXM4-80GB")
