"""What one simulated hccn_tool call costs: the one-shot stand-in, the Python thin client and
the wrapper's bash fast path, the last two answered by the resident daemon.

Not a test: runs N calls of ``hccn_tool -i 0 -link -g`` one after another through real
processes (``subprocess.run``) with each way of starting the stand-in, and prints wall
time and CPU (user + system of the child processes) per call. The wrapper is what
``ascend-pd sim install-tools`` writes (bash over loopback TCP, ``ascend_pd.sim.simd_tcp``;
else the thin client ``ascend_pd.sim.simd_client`` on the unix socket); the first call
starts the daemon, so it is run once before measuring.

    .venv/bin/python benchmarks/sim_standin_bench.py [--calls 50]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ascend_pd.sim import simd_client
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.sim.install import install_tools


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], env: dict[str, str], calls: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per call."""
    subprocess.run(argv, env=env, check=True, capture_output=True)  # warm: daemon, caches
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    for _ in range(calls):
        subprocess.run(argv, env=env, check=True, capture_output=True)
    wall, cpu = time.perf_counter() - wall0, _children_cpu() - cpu0
    return 1000 * wall / calls, 1000 * cpu / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Path(tmp) / "sim-cluster.yaml"
        save_cluster(generate_cluster([("p0", "192.0.0.1"), ("d0", "192.0.0.2")], "a2"), cluster)
        tools = install_tools(Path(tmp) / "bin")
        env = {**os.environ, "ASCEND_PD_SIM_CLUSTER": str(cluster), "ASCEND_PD_SIM_HOST": "p0"}
        query = ["-i", "0", "-link", "-g"]
        ways = {
            "one-shot (python -m ascend_pd.sim.hccn_tool)":
                [sys.executable, "-m", "ascend_pd.sim.hccn_tool", *query],
            # first: its first call starts the daemon with the TCP address the wrapper names
            "wrapper (bash fast path) + daemon, TCP": [str(tools["hccn_tool"]), *query],
            "thin client (python -I -S) + daemon, unix socket":
                [sys.executable, "-I", "-S", simd_client.__file__, "hccn_tool", *query],
        }
        for name, argv in ways.items():
            wall, cpu = measure(argv, env, args.calls)
            print(f"{name:<48} {wall:7.1f} ms wall  {cpu:7.1f} ms CPU per call")


if __name__ == "__main__":
    main()
