"""gen-ranktable at scale: 128 simulated A3 hosts × 16 devices, in-process, with latency.

Not a test: prints the wall time of collecting + validating + building the ranktable through
the real code path (runner pool, fan-out, parsers, validation) against the simulated node,
with a per-command latency injected in the simulator (default 50 ms, like a real hccn_tool
query). Target (issue 3): under 10 s.

    .venv/bin/python benchmarks/gen_ranktable_bench.py [--hosts 128] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from ascend_pd.ranktable import api
from ascend_pd.ranktable.plan import plan_from_spec
from ascend_pd.runners.factory import runner_factory, tool_paths
from ascend_pd.runners.fanout import RunnerPool
from ascend_pd.sim.cluster import dump_cluster, generate_cluster
from ascend_pd.spec import parse_spec

PER_POD = 40  # A3 server indexes run 0..47 inside one super pod


def build_cluster(n_hosts: int, latency_s: float) -> str:
    names = [(f"n{i:03d}", f"10.{i // 200}.{i % 200}.1") for i in range(n_hosts)]
    hosts = []
    for pod, start in enumerate(range(0, n_hosts, PER_POD)):
        chunk = generate_cluster(names[start:start + PER_POD], soc="a3", first_server_index=2)
        for host in chunk.hosts:
            devices = [d.model_copy(update={"vnic_ip": d.vnic_ip.replace(
                "192.168.", f"192.{168 + pod}.", 1) if d.vnic_ip else None})
                for d in host.devices]
            hosts.append(host.model_copy(update={
                "super_pod_id": pod, "devices": devices,
                "latency": host.latency.model_copy(update={"query_s": latency_s})}))
    cluster = chunk.model_copy(update={"hosts": hosts})
    return dump_cluster(cluster)


def build_spec(n_hosts: int) -> str:
    devices = list(range(16))
    hosts = [{"name": f"n{i:03d}", "address": f"10.{i // 200}.{i % 200}.1", "devices": devices}
             for i in range(n_hosts)]
    half = n_hosts // 2
    inst = [{"name": f"i{i:03d}", "hosts": [f"n{i:03d}"], "devices": devices, "tp": 16,
             "port": 8100} for i in range(n_hosts)]
    return yaml.safe_dump({
        "name": "bench", "hardware": "a3", "backend": "sim", "hosts": hosts,
        "model": {"path": "/models/x", "served_name": "x"},
        "prefill": inst[:half], "decode": inst[half:], "sim": {"cluster": "sim.yaml"},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=128)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "sim.yaml").write_text(build_cluster(args.hosts, args.latency_ms / 1000))
        spec = parse_spec(build_spec(args.hosts))
        plan = plan_from_spec(spec)
        commands = len(plan.hosts) * 2 + len(plan.slots) * 2
        with RunnerPool(runner_factory(spec, "sim", spec_dir=base)) as pool:
            start = time.perf_counter()
            result = api.generate(plan, pool.get, lambda h: tool_paths(spec.host(h)))
            wall = time.perf_counter() - start
    entries = len(result.table["prefill_device_list"]) + len(result.table["decode_device_list"])
    serial = commands * args.latency_ms / 1000
    print(f"hosts                 {args.hosts} × 16 devices (A3), {args.latency_ms:g} ms/command")
    print(f"commands              {commands} (npu-smi -m, ip addr, -vnic -g, spod-info)")
    print(f"ranktable entries     {entries}")
    print(f"wall time             {wall:.2f} s   (target < 10 s)")
    print(f"one-after-another     {serial:.1f} s   ({serial / wall:.0f}× slower)")


if __name__ == "__main__":
    main()
