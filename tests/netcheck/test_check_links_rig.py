"""check-links over real SSH in the namespace rig: the stand-in tools run as processes on
h1..h3, faults are injected in the shared sim cluster file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ascend_pd.examples import example_spec
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.sim.faults import apply_fault
from ascend_pd.sim.install import install_tools
from ascend_pd.sim.state import reset_state
from tests.netcheck.conftest import keys, run_json

DEVICES = [0, 1, 2, 3]  # fewer devices: every command is a real process over SSH


def rig_spec(rig: Any, tmp_path: Path, decode_hosts: int = 1) -> Path:
    hosts = rig.hosts
    save_cluster(generate_cluster([(h.name, h.address) for h in hosts], devices=4),
                 rig.sim_cluster)
    reset_state(rig.sim_cluster)
    tools = install_tools(rig.tools_dir)
    data = yaml.safe_load(example_spec("a2-1p1d"))
    data["hosts"] = [dict(h, hccn_tool=str(tools["hccn_tool"]), npu_smi=str(tools["npu-smi"]))
                     for h in rig.spec_hosts(DEVICES)]
    data.update(ssh=rig.ssh_spec(), backend="ssh")
    data["prefill"][0].update(hosts=[hosts[0].name], devices=DEVICES, tp=4)
    data["decode"][0].update(hosts=[h.name for h in hosts[1:1 + decode_hosts]],
                             devices=DEVICES, tp=4, dp=decode_hosts)
    data["proxy"]["host"] = hosts[0].name
    spec = tmp_path / "pd.yaml"
    spec.write_text(yaml.safe_dump(data))
    return spec


@pytest.mark.rig
def test_faults_and_fix_over_ssh(rig: Any, tmp_path: Path) -> None:
    spec = rig_spec(rig, tmp_path)
    h1, h2 = rig.hosts[0].name, rig.hosts[1].name
    apply_fault(rig.sim_cluster, h1, "tls-on", device=2)
    apply_fault(rig.sim_cluster, h2, "link-down", device=1)
    apply_fault(rig.sim_cluster, h2, "busy", device=0, value="2")
    apply_fault(rig.sim_cluster, h1, "ping-loss", device=3, value="29.10.2.4:2")
    code, data = run_json("check-links", "-c", str(spec))
    assert code == 1
    assert keys(data) == {(h1, 2, "tls"), (h2, 1, "link"), (h1, 3, "ping")}
    code, data = run_json("check-links", "-c", str(spec), "--fix", "tls", "--yes")
    assert keys(data) == {(h2, 1, "link"), (h1, 3, "ping")}
    assert data["fix"]["changed"] == [{"host": h1, "device": 2}]


@pytest.mark.rig
def test_unreachable_host_is_one_finding(rig: Any, tmp_path: Path) -> None:
    spec = rig_spec(rig, tmp_path, decode_hosts=2)
    h3 = rig.hosts[2].name
    with rig.sshd_stopped(h3):
        code, data = run_json("check-links", "-c", str(spec))
    assert code == 1
    assert keys(data) == {(h3, None, "reach")}
    assert data["pings"]["run"] == 32  # h1 <-> h2 still pinged (4 x 4 pairs, both ways)


@pytest.mark.rig
def test_legacy_flags_over_ssh(rig: Any, tmp_path: Path) -> None:
    h1, h3 = rig.hosts[0], rig.hosts[2]  # both on port 22 (one --ssh-port for all --ips)
    save_cluster(generate_cluster([(h1.name, h1.address), (h3.name, h3.address)], devices=4),
                 rig.sim_cluster)
    reset_state(rig.sim_cluster)
    install_tools(rig.tools_dir)
    apply_fault(rig.sim_cluster, h3.name, "no-ip", device=2)
    code, data = run_json(
        "check-links", "--ips", h1.address, h3.address, "--prefill-device-cnt", "4",
        "--decode-device-cnt", "4", "--ssh-key", str(rig.key_path),
        "--known-hosts", str(rig.known_hosts), "--backend", "ssh",
        env={"HCCN_TOOL_PATH": str(rig.tools_dir / "hccn_tool")})
    assert code == 1
    assert keys(data) == {(h3.address, 2, "ip")}
    assert data["source"] == "flags" and data["soc"] == "a2"
