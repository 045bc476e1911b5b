"""launch / status / stop over SSH: simulated prefill and decode on two rig hosts, the proxy on
this machine, a request end to end, and nothing left running afterwards."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from tests.launch.procs import pid_alive

pytestmark = pytest.mark.rig


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def test_launch_status_request_stop_over_ssh(rig: Any, tmp_path: Path) -> None:
    h1, h2 = rig.hosts[0], rig.hosts[1]
    save_cluster(generate_cluster([(h1.name, h1.address), (h2.name, h2.address)]),
                 rig.sim_cluster)
    hosts = [*rig.spec_hosts()[:2], {"name": "ctl", "address": rig.gateway, "nic": "lo"}]
    proxy_port = free_port(rig.gateway)
    spec = {
        "name": "rig-1p1d", "hardware": "a2", "ssh": rig.ssh_spec(), "hosts": hosts,
        "model": {"path": "/models/m", "served_name": "m", "attention": "gqa"},
        "prefill": [{"name": "p0", "hosts": [h1.name], "devices": list(range(8)), "tp": 8,
                     "port": 8100}],
        "decode": [{"name": "d0", "hosts": [h2.name], "devices": list(range(8)), "tp": 8,
                    "port": 8200}],
        "proxy": {"host": "ctl", "port": proxy_port, "bind": rig.gateway},
        "sim": {"cluster": str(rig.sim_cluster)},
        "state_dir": str(tmp_path / "state"),
    }
    path = tmp_path / "pd.yaml"
    path.write_text(yaml.safe_dump(spec))
    runner = CliRunner()
    launched = runner.invoke(cli, ["launch", "-c", str(path), "--timeout", "60", "--json"])
    try:
        assert launched.exit_code == 0, launched.output
        units = {u["name"]: u for u in json.loads(launched.output)["data"]["units"]}
        assert set(units) == {"p0@h1", "d0@h2", "proxy@ctl"}
        assert all(u["ready"] for u in units.values())

        again = runner.invoke(cli, ["launch", "-c", str(path), "--json"])
        assert {u["action"] for u in json.loads(again.output)["data"]["units"]} == {
            "already running"}

        status = runner.invoke(cli, ["status", "-c", str(path), "--json"])
        rows = {u["name"]: u for u in json.loads(status.output)["data"]["units"]}
        assert rows["p0@h1"]["host"] == "h1"
        assert rows["d0@h2"]["port"] == 8200
        assert all(r["alive"] and r["ready"] and r["pid"] for r in rows.values())

        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                           "max_tokens": 5}).encode()
        req = urllib.request.Request(f"http://{rig.gateway}:{proxy_port}/v1/chat/completions",
                                     data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=20) as resp:
            answer = json.loads(resp.read())
        assert answer["usage"]["completion_tokens"] == 5

        logs = runner.invoke(cli, ["logs", "-c", str(path), "d0", "-n", "200"])
        assert "Application startup complete." in logs.output
    finally:
        stopped = runner.invoke(cli, ["stop", "-c", str(path), "--json"])
    assert stopped.exit_code == 0, stopped.output
    assert {u["action"] for u in json.loads(stopped.output)["data"]["units"]} == {"stopped"}
    assert [n for n, u in units.items() if pid_alive(u["pid"])] == []
    after = runner.invoke(cli, ["status", "-c", str(path), "--json"])
    assert after.exit_code == 1
    assert not any(u["alive"] for u in json.loads(after.output)["data"]["units"])
