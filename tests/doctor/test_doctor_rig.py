"""doctor over SSH: every host probed in parallel, a fault on one host, an unreachable host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from tests.doctor.conftest import RELEASE

from ascend_pd.cli import cli
from ascend_pd.doctor import CHECKS
from ascend_pd.doctor.simroot import build_sysroot

pytestmark = pytest.mark.rig


def test_doctor_over_ssh(rig: Any, tmp_path: Path) -> None:
    hosts = []
    for i, spec_host in enumerate(rig.spec_hosts()):
        faults = ["vllm_mismatch"] if i == 1 else []
        root = build_sysroot(tmp_path / f"root{i}", faults=faults, release=RELEASE,
                             nics={"eth0": [f"{spec_host['address']}/24"]})
        hosts.append({**spec_host, "env": root.env})
    names = [h["name"] for h in hosts]
    spec = {
        "name": "doctor-rig", "hardware": "a2", "backend": "ssh", "ssh": rig.ssh_spec(),
        "hosts": hosts,
        "model": {"path": "/models/Qwen3-32B-W8A8", "served_name": "q", "quantization": "ascend"},
        "connector": {"type": "mooncake", "vllm_ascend_version": RELEASE},
        "prefill": [{"name": "p0", "hosts": [names[0]], "devices": list(range(8)), "tp": 8,
                     "port": 8100}],
        "decode": [{"name": "d0", "hosts": [names[1]], "devices": list(range(8)), "tp": 8,
                    "port": 8200},
                   {"name": "d1", "hosts": [names[2]], "devices": list(range(8)), "tp": 8,
                    "port": 8200}],
    }
    path = tmp_path / "pd.yaml"
    path.write_text(yaml.safe_dump(spec))
    with rig.sshd_stopped(names[2]):
        result = CliRunner().invoke(cli, ["doctor", "-c", str(path), "--all", "--json"])
    assert result.exit_code == 1, result.output
    by_host = {h["host"]: h for h in json.loads(result.output)["data"]["hosts"]}
    assert by_host[names[0]]["ok"] is True
    assert len(by_host[names[0]]["findings"]) == len(CHECKS)
    failed = [(c["check"], c["severity"]) for c in by_host[names[1]]["findings"]
              if c["severity"] != "pass"]
    assert failed == [("vllm-pair", "error")]
    down = by_host[names[2]]
    assert down["ok"] is False
    assert "ssh" in (down["error"] or "").lower() or "refused" in (down["error"] or "")
