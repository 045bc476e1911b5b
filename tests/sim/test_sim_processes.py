"""The stand-in executables as real processes (LocalRunner + env vars), the busy lock
between two processes, persistence across processes and hung commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ascend_pd.errors import CommandTimeoutError
from ascend_pd.runners.local import LocalRunner
from ascend_pd.sim.faults import apply_fault
from ascend_pd.sim.install import install_tools
from ascend_pd.sim.runner import make_sim_runner
from ascend_pd.sim.state import HostState

SAME_BYTES = [
    ("hccn_tool", "-i", "0", "-ip", "-g"),
    ("hccn_tool", "-i", "0", "-vnic", "-g"),
    ("hccn_tool", "-i", "3", "-tls", "-g"),
    ("hccn_tool", "-i", "0", "-link", "-x"),
    ("hccn_tool", "-i", "1", "-ping", "-g", "address", "29.10.1.1"),
    ("npu-smi", "info"),
    ("npu-smi", "info", "-t", "spod-info", "-i", "0", "-c", "1"),
]


def env_for(cluster: Path, host: str) -> dict[str, str]:
    return {"ASCEND_PD_SIM_CLUSTER": str(cluster), "ASCEND_PD_SIM_HOST": host}


@pytest.fixture
def tools(tmp_path: Path) -> dict[str, Path]:
    return install_tools(tmp_path / "bin")


def test_processes_print_the_same_bytes_as_the_in_process_runner(
    a3_pair: Path, tools: dict[str, Path]
) -> None:
    local = LocalRunner("p0", env=env_for(a3_pair, "p0"))
    sim = make_sim_runner(a3_pair, "p0")
    for argv in SAME_BYTES:
        real = local.run([str(tools[argv[0]]), *argv[1:]], timeout=20)
        fake = sim.run(list(argv))
        assert (real.exit_code, real.stdout, real.stderr) == (
            fake.exit_code, fake.stdout, fake.stderr), argv


def test_console_scripts(a2_pair: Path) -> None:
    script = Path(sys.executable).parent / "ascend-pd-sim-hccn-tool"
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable} (not a venv install)")
    result = LocalRunner("d0", env=env_for(a2_pair, "d0")).run([str(script), "-i", "7", "-ip",
                                                                 "-g"], timeout=20)
    assert (result.exit_code, result.stdout) == (0, "ipaddr:29.10.2.8\nnetmask:255.255.255.0\n")


def test_missing_env_and_unknown_host(
    a2_pair: Path, tools: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASCEND_PD_SIM_CLUSTER", raising=False)
    monkeypatch.delenv("ASCEND_PD_SIM_HOST", raising=False)
    result = LocalRunner("x").run([str(tools["hccn_tool"]), "-i", "0", "-ip", "-g"], timeout=20)
    assert result.exit_code == 1
    assert "ASCEND_PD_SIM_CLUSTER is not set" in result.stderr
    result = LocalRunner("x", env=env_for(a2_pair, "nope")).run(
        [str(tools["npu-smi"]), "info"], timeout=20)
    assert result.exit_code == 1
    assert "host 'nope' is not in sim cluster" in result.stderr


def test_baked_defaults_work_without_env(
    a2_pair: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASCEND_PD_SIM_CLUSTER", raising=False)
    monkeypatch.delenv("ASCEND_PD_SIM_HOST", raising=False)
    baked = install_tools(tmp_path / "baked", cluster=a2_pair, host="d0")
    result = LocalRunner("d0").run([str(baked["hccn_tool"]), "-i", "0", "-ip", "-g"], timeout=20)
    assert result.stdout == "ipaddr:29.10.2.1\nnetmask:255.255.255.0\n"


def test_tls_set_persists_across_processes(a2_pair: Path, tools: dict[str, Path]) -> None:
    run = LocalRunner("p0", env=env_for(a2_pair, "p0")).run
    tool = str(tools["hccn_tool"])
    assert run([tool, "-i", "2", "-tls", "-s", "enable", "1"], timeout=20).stdout.endswith(
        "Cmd executed successfully!\n")
    assert "tls switch[1]" in run([tool, "-i", "2", "-tls", "-g"], timeout=20).stdout
    result = run([tool, "-i", "2", "-tls", "-s", "enable", "0"], timeout=20)
    assert (result.exit_code, result.stdout) == (0, "Cmd executed successfully!\n")
    assert "tls switch[0]" in run([tool, "-i", "2", "-tls", "-g"], timeout=20).stdout
    # The other host and the other devices are untouched; the in-process runner agrees.
    assert "tls switch[0]" in make_sim_runner(a2_pair, "p0").run(
        ["hccn_tool", "-i", "2", "-tls", "-g"]).stdout


def test_busy_lock_between_two_processes(a2_pair: Path, tools: dict[str, Path]) -> None:
    apply_fault(a2_pair, "p0", "latency-set", device=0, value="3")
    tool = str(tools["hccn_tool"])
    holder = subprocess.Popen(
        [tool, "-i", "0", "-tls", "-s", "enable", "1"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, **env_for(a2_pair, "p0")},
    )
    try:
        lock_file = HostState(a2_pair, "p0").tool_lock_path
        deadline = time.monotonic() + 15
        while not (lock_file.exists() and lock_file.read_text().strip()):
            assert holder.poll() is None, "the set command ended before taking the lock"
            assert time.monotonic() < deadline, "the set command never took the lock"
            time.sleep(0.02)
        run = LocalRunner("p0", env=env_for(a2_pair, "p0")).run
        contender = run([tool, "-i", "1", "-tls", "-s", "enable", "1"], timeout=20)
        assert (contender.exit_code, contender.stdout, contender.stderr) == (
            11, "hccn_tool is busy, please try again.\n", "")
        # Queries do not take the lock.
        assert run([tool, "-i", "1", "-ip", "-g"], timeout=20).exit_code == 0
        out, err = holder.communicate(timeout=20)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
    assert (holder.returncode, err) == (0, "")
    assert out.endswith("Cmd executed successfully!\n")
    assert "tls switch[1]" in run([tool, "-i", "0", "-tls", "-g"], timeout=20).stdout
    assert "tls switch[0]" in run([tool, "-i", "1", "-tls", "-g"], timeout=20).stdout


def test_hung_command_times_out_as_a_process(a2_pair: Path, tools: dict[str, Path]) -> None:
    apply_fault(a2_pair, "p0", "hang", device=5, value="net_health")
    runner = LocalRunner("p0", env=env_for(a2_pair, "p0"))
    start = time.monotonic()
    with pytest.raises(CommandTimeoutError):
        runner.run([str(tools["hccn_tool"]), "-i", "5", "-net_health", "-g"], timeout=1.5)
    assert time.monotonic() - start < 10
    assert runner.run([str(tools["hccn_tool"]), "-i", "5", "-link", "-g"],
                      timeout=20).stdout == "link status: UP\n"


def test_hung_command_times_out_in_process(a2_pair: Path) -> None:
    apply_fault(a2_pair, "p0", "hang", device=5)
    with pytest.raises(CommandTimeoutError):
        make_sim_runner(a2_pair, "p0").run(["hccn_tool", "-i", "5", "-ip", "-g"], timeout=0.2)
