"""check-links on platform cuda: the TCP matrix from the deployment plan, with real sockets.

Local tier: two loopback hosts (127.0.0.2 / 127.0.0.3, backend local), listeners opened in
this process. Rig tier (network namespaces + sshd): listeners in the destination namespaces,
a dropped path and a missing route in the sources' namespaces.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ascend_pd.netcheck.tcp import parse_probe_output, tcp_pairs
from ascend_pd.render.plan import build_plan
from ascend_pd.spec import load_spec
from tests.doctor.conftest import free_port
from tests.netcheck.conftest import run, run_json
from tests.test_json_schemas import check_data

LISTENER = r"""
import socket, sys, time
socks = []
for port in sys.argv[2:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(port)))
    s.listen(16)
    socks.append(s)
print("ready", flush=True)
time.sleep(600)
"""


def cuda_spec(path: Path, hosts: list[dict[str, Any]], p_host: str, d_hosts: list[str],
              ports: dict[str, int], **extra: Any) -> Path:
    spec = {
        "version": 1, "name": "tcp-matrix", "platform": "cuda", "hosts": hosts,
        "model": {"path": "/models/m", "served_name": "m", "attention": "gqa"},
        "connector": {"type": "nixl", "kv_port_base": ports["kv"]},
        "prefill": [{"name": "prefill-0", "hosts": [p_host], "devices": [0], "tp": 1,
                     "port": ports["p"]}],
        "decode": [{"name": "decode-0", "hosts": d_hosts, "devices": [0], "tp": 1,
                    "dp": len(d_hosts), "port": ports["d"], "dp_rpc_port": ports["rpc"]}],
        "proxy": {"host": p_host, "port": ports["proxy"]},
        **extra,
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


@contextlib.contextmanager
def listening(address: str, ports: list[int], netns: str | None = None) -> Iterator[None]:
    argv = [sys.executable, "-c", LISTENER, address, *map(str, ports)]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def loopback_ok() -> str | None:
    for address in ("127.0.0.2", "127.0.0.3"):
        try:
            with socket.socket() as sock:
                sock.bind((address, 0))
        except OSError as exc:
            return f"cannot bind {address}: {exc}"
    return None


def local_world(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    ports = {"p": free_port(), "d": free_port(), "kv": free_port(),
             "rpc": free_port(), "proxy": free_port()}
    hosts = [{"name": n, "address": a, "nic": "lo", "devices": [0],
              "env": {"ASCEND_PD_PYTHON": sys.executable}}
             for n, a in (("p", "127.0.0.2"), ("d", "127.0.0.3"))]
    return cuda_spec(tmp_path / "pd.yaml", hosts, "p", ["d"], ports, backend="local"), ports


def test_pairs_come_from_the_plan_claims(tmp_path: Path) -> None:
    spec, ports = local_world(tmp_path)
    pairs = {(p.src, p.dst.host, p.dst.port, p.dst.key)
             for p in tcp_pairs(build_plan(load_spec(spec)))}
    assert pairs == {
        ("p", "d", ports["d"], "decode[0].port"),          # the proxy calls decode's API
        ("d", "p", ports["kv"], "connector.kv_port_base"),  # D opens P's NIXL side channel
        ("p", "d", ports["kv"] + 100, "connector.kv_port_base"),  # and the other way
    }  # prefill's API is on the proxy's own host; the proxy port is for clients


def test_probe_output_parser_quotes_a_bad_line() -> None:
    assert parse_probe_output("10.0.0.2 36000 timeout no answer in 3s\n") == {
        ("10.0.0.2", 36000): ("timeout", "no answer in 3s")}
    with pytest.raises(Exception, match="unexpected line"):
        parse_probe_output("Traceback (most recent call last):\n")


def test_loopback_matrix_open_and_closed(tmp_path: Path) -> None:
    reason = loopback_ok()
    if reason:
        pytest.skip(f"needs 127.0.0.2 and 127.0.0.3 on lo: {reason}")
    spec, ports = local_world(tmp_path)
    with listening("127.0.0.3", [ports["d"]]), listening("127.0.0.2", [ports["kv"]]):
        code, data = run_json("check-links", "-c", str(spec))
        assert code == 0, data
        assert data["tcp"]["counts"] == {"open": 2, "closed": 1}
        check_data(data)  # the TCP form of ascend-pd/check-links/v2 is the documented one
        (closed,) = data["findings"]
        assert (closed["where"]["host"], closed["check"], closed["severity"]) == ("d", "tcp", "warning")
        assert f"127.0.0.3:{ports['kv'] + 100}" in closed["message"]
        after, data = run_json("check-links", "-c", str(spec), "--after-launch")
        assert after == 1 and data["findings"][0]["severity"] == "error"
        human = run("check-links", "-c", str(spec)).output
        assert "TCP matrix: 3 (source, port) pair(s): 1 closed, 2 open" in human


def test_npu_only_flags_are_refused_on_cuda(tmp_path: Path) -> None:
    spec, _ = local_world(tmp_path)
    result = run("check-links", "-c", str(spec), "--fix", "tls", "--yes")
    assert result.exit_code == 2
    assert "not for platform cuda" in result.output
    sim = run("check-links", "-c", str(spec), "--backend", "sim")
    assert sim.exit_code == 2
    assert "backend sim" in sim.output


@pytest.mark.rig
def test_rig_matrix_finds_a_dropped_path_and_a_missing_route(rig: Any, tmp_path: Path) -> None:
    h1, h2, h3 = rig.hosts
    ports = {"p": 18100, "d": 18200, "kv": 36000, "rpc": 18300, "proxy": 18000}
    spec = cuda_spec(tmp_path / "pd.yaml", rig.spec_hosts([0]), h1.name, [h2.name, h3.name],
                     ports, ssh=rig.ssh_spec(), backend="ssh")
    listeners = [
        listening(h1.address, [ports["p"], ports["kv"]], h1.netns),
        listening(h2.address, [ports["d"], ports["rpc"], ports["kv"] + 100], h2.netns),
        listening(h3.address, [ports["kv"] + 101], h3.netns),
    ]
    with contextlib.ExitStack() as stack:
        for listener in listeners:
            stack.enter_context(listener)
        code, data = run_json("check-links", "-c", str(spec), "--after-launch")
        assert code == 0, data["findings"]
        assert data["tcp"]["counts"] == {"open": 6}
        # h1 -> h2 dropped (a next hop that never answers ARP), h3 -> h1 without a route
        routes = [(h1.netns, f"{h2.address}/32", ["via", rig.unused_address]),
                  (h3.netns, f"{h1.address}/32", [])]
        for ns, dst, via in routes:
            kind = [] if via else ["unreachable"]
            subprocess.run(["ip", "netns", "exec", ns, "ip", "route", "add", *kind, dst, *via],
                           check=True)
            stack.callback(subprocess.run, ["ip", "netns", "exec", ns, "ip", "route", "del",
                                            dst], check=False)
        code, data = run_json("check-links", "-c", str(spec), "--tcp-timeout", "1")
    assert code == 1
    faults = {(f["where"]["host"], f["message"].split(" (")[0]): f for f in data["findings"]}
    assert set(faults) == {
        (h1.name, f"{h2.name} {h2.address}:{ports['d']}"),          # proxy -> decode API
        (h1.name, f"{h2.name} {h2.address}:{ports['kv'] + 100}"),   # P -> D side channel
        (h3.name, f"{h1.name} {h1.address}:{ports['kv']}"),         # D (h3) -> P side channel
        # a route breaks the replies too: h1 cannot answer h2, h3 cannot answer h1
        (h2.name, f"{h1.name} {h1.address}:{ports['kv']}"),
        (h1.name, f"{h3.name} {h3.address}:{ports['kv'] + 101}"),
    }
    assert all(f["severity"] == "error" for f in faults.values())
    no_route = faults[(h3.name, f"{h1.name} {h1.address}:{ports['kv']}")]
    assert "No route from h3" in no_route["fix"]
    dropped = faults[(h1.name, f"{h2.name} {h2.address}:{ports['d']}")]
    assert "no answer in 1s" in dropped["message"] and "open TCP" in dropped["fix"]
    assert data["tcp"]["counts"] == {"open": 1, "timeout": 4, "unreachable": 1}
