"""The thin stand-in and its resident daemon: same bytes, cheap calls, nothing left behind."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest
from tests.launch.procs import pid_alive, processes_matching

from ascend_pd.runners.local import LocalRunner
from ascend_pd.sim.install import install_tools
from ascend_pd.sim.runner import make_sim_runner
from ascend_pd.sim.simd_client import socket_path


def _env(cluster: Path, host: str, **extra: str) -> dict[str, str]:
    return {"ASCEND_PD_SIM_CLUSTER": str(cluster), "ASCEND_PD_SIM_HOST": host, **extra}


def _daemons(sock: str) -> list[int]:
    return [pid for pid, cmd in processes_matching(f"ascend_pd.sim.simd {sock}")
            if "simd_client" not in cmd]


def _wait_gone(sock: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [p for p in _daemons(sock) if pid_alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def test_the_wrapper_is_the_thin_client(tmp_path: Path) -> None:
    text = install_tools(tmp_path / "bin")["hccn_tool"].read_text()
    assert "-I -S" in text
    assert "simd_client.py hccn_tool" in text


def test_first_call_starts_one_daemon_that_answers_later_calls_and_exits_when_idle(
    a2_pair: Path, tmp_path: Path
) -> None:
    tools = install_tools(tmp_path / "bin")
    # A short idle time, inherited by the daemon the first call starts.
    runner = LocalRunner("p0", env=_env(a2_pair, "p0", ASCEND_PD_SIMD_IDLE_S="2"))
    sock = socket_path(str(a2_pair), sys.executable)
    sim = make_sim_runner(a2_pair, "p0")
    for argv in (["hccn_tool", "-i", "0", "-ip", "-g"], ["npu-smi", "info"],
                 ["hccn_tool", "-i", "9", "-ip", "-g"]):
        real = runner.run([str(tools[argv[0]]), *argv[1:]], timeout=20)
        fake = sim.run(argv)
        assert (real.exit_code, real.stdout, real.stderr) == (
            fake.exit_code, fake.stdout, fake.stderr), argv
    assert os.path.exists(sock)
    assert len(_daemons(sock)) == 1
    assert _wait_gone(sock, timeout=15) == []
    assert not os.path.exists(sock)
    assert list(a2_pair.parent.glob(f"{a2_pair.name}.simd-*")) == []  # its TCP address too


def test_without_a_daemon_the_client_runs_the_full_stand_in(a2_pair: Path, tmp_path: Path) -> None:
    # TMPDIR names a directory that does not exist: no socket can be bound there, so the
    # daemon cannot start; the call must still answer, the slow way.
    tools = install_tools(tmp_path / "bin")
    env = _env(a2_pair, "d0", TMPDIR=str(tmp_path / "missing"))
    result = LocalRunner("d0", env=env).run([str(tools["hccn_tool"]), "-i", "7", "-ip", "-g"],
                                            timeout=30)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "ipaddr:29.10.2.8\nnetmask:255.255.255.0\n", "")


@pytest.mark.parametrize("host", ["p0", "nope"])
def test_errors_come_back_like_the_tool_prints_them(a2_pair: Path, tmp_path: Path,
                                                    host: str) -> None:
    tools = install_tools(tmp_path / "bin")
    result = LocalRunner(host, env=_env(a2_pair, host, ASCEND_PD_SIMD_IDLE_S="2")).run(
        [str(tools["npu-smi"]), "info", "-t", "board", "-i", "99"], timeout=20)
    fake = make_sim_runner(a2_pair, "p0").run(["npu-smi", "info", "-t", "board", "-i", "99"])
    if host == "nope":
        assert result.exit_code == 1
        assert result.stderr == f"npu-smi: host 'nope' is not in sim cluster {a2_pair}\n"
    else:
        assert (result.exit_code, result.stdout, result.stderr) == (
            fake.exit_code, fake.stdout, fake.stderr)


def _addr_file(cluster: Path) -> Path:
    (found,) = cluster.parent.glob(f"{cluster.name}.simd-*")
    return found


def test_once_the_daemon_runs_the_wrapper_answers_over_tcp_with_bash_alone(
    a2_pair: Path, tmp_path: Path
) -> None:
    tools = install_tools(tmp_path / "bin")
    env = _env(a2_pair, "p0", ASCEND_PD_SIMD_IDLE_S="5")
    runner = LocalRunner("p0", env=env)
    sim = make_sim_runner(a2_pair, "p0")
    runner.run([str(tools["npu-smi"]), "info"], timeout=20)  # starts the daemon
    port, token = _addr_file(a2_pair).read_text().split()
    assert oct(_addr_file(a2_pair).stat().st_mode & 0o777) == "0o600"  # the token is private
    for argv in (["hccn_tool", "-i", "0", "-ip", "-g"], ["npu-smi", "info"],
                 ["hccn_tool", "-i", "9", "-ip", "-g"], ["hccn_tool", "-i", "3", "-tls", "-g"]):
        real = runner.run([str(tools[argv[0]]), *argv[1:]], timeout=20)
        fake = sim.run(argv)
        assert (real.exit_code, real.stdout, real.stderr) == (
            fake.exit_code, fake.stdout, fake.stderr), argv
    # The answer came from bash builtins: the trace ends in `exit`, Python never ran.
    traced = runner.run(["bash", "-x", str(tools["hccn_tool"]), "-i", "0", "-ip", "-g"],
                        timeout=20)
    assert "+ exit 0" in traced.stderr
    assert "simd_client.py" not in traced.stderr
    # A caller without the token gets nothing back.
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as conn:
        conn.sendall(b"\0".join([b"not-" + token.encode(), b"hccn_tool", str(a2_pair).encode(),
                                 b"p0", b"0", b""]))
        assert conn.recv(1024) == b""


def test_a_stale_tcp_address_falls_back_to_the_thin_client(a2_pair: Path,
                                                           tmp_path: Path) -> None:
    tools = install_tools(tmp_path / "bin")
    runner = LocalRunner("d0", env=_env(a2_pair, "d0", ASCEND_PD_SIMD_IDLE_S="2"))
    runner.run([str(tools["hccn_tool"]), "-i", "0", "-ip", "-g"], timeout=20)
    addr = _addr_file(a2_pair)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    addr.write_text(f"{free} {'0' * 32}\n")  # a daemon that died without cleaning up
    result = runner.run([str(tools["hccn_tool"]), "-i", "7", "-ip", "-g"], timeout=30)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "ipaddr:29.10.2.8\nnetmask:255.255.255.0\n", "")
