"""Benchmark: check-links on a simulated 64 hosts x 16 devices (A3) with per-command latency.

Not a test: run ``.venv/bin/python benchmarks/check_links_bench.py`` and read the figures.
Every hccn_tool query sleeps ``--query-ms`` and every ping ``--ping-ms`` inside the simulated
runner (backend ``sim``), so the wall time is dominated by the plan's scheduling, as on real
hosts. Printed:

- wall: measured time of ``check_network``;
- bound: the critical path of the plan: per phase, the slowest host's commands run in
  rounds of ``per_host`` at a time (ceil(n / per_host) x latency), phases one after another;
- serial: the same commands one after another, as the runbooks' bash loops do (computed
  from the same latencies, not waited for).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from ascend_pd.netcheck import CheckOptions, check_network
from ascend_pd.netcheck.targets import TargetHost, Targets
from ascend_pd.ranktable.plan import Slot
from ascend_pd.runners.fanout import RunnerPool
from ascend_pd.sim.cluster import SimCluster, generate_cluster, save_cluster
from ascend_pd.sim.runner import make_sim_runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--query-ms", type=float, default=50.0)
    parser.add_argument("--ping-ms", type=float, default=300.0)
    parser.add_argument("--ping", default="auto", help="ping plan (default auto)")
    parser.add_argument("--per-host", type=int, default=8)
    args = parser.parse_args()

    soc = "a3" if args.devices > 8 else "a2"
    names = [(f"n{i:03d}", f"10.1.{i // 250}.{i % 250 + 1}") for i in range(args.hosts)]
    # An A3 super pod numbers at most 48 servers: put every 32 hosts in their own super pod,
    # with their own vNIC range, as two SuperPoDs would be.
    hosts = []
    for pod, first in enumerate(range(0, args.hosts, 32)):
        part = generate_cluster(names[first:first + 32], soc=soc, devices=args.devices,
                                first_server_index=0, roce_prefix=f"29.{10 + pod}")
        for host in part.hosts:
            host.super_pod_id = pod
            for dev in host.devices:
                if dev.vnic_ip is not None:
                    dev.vnic_ip = dev.vnic_ip.replace("192.168.", f"192.{168 + pod}.", 1)
        hosts += part.hosts
    cluster = SimCluster(hosts=hosts)
    for host in cluster.hosts:
        host.latency.query_s = args.query_ms / 1000
        host.latency.ping_s = args.ping_ms / 1000
    path = Path(tempfile.mkdtemp(prefix="ascend-pd-bench-")) / "sim.yaml"
    save_cluster(cluster, path)
    half = args.hosts // 2
    slots = [Slot("prefill" if i < half else "decode", f"inst{i}", name, dev)
             for i, (name, _) in enumerate(names) for dev in range(args.devices)]
    targets = Targets("spec", [TargetHost(n, a) for n, a in names], slots, soc)
    options = CheckOptions(ping=args.ping, per_host=args.per_host, max_hosts=args.hosts,
                           ping_timeout_s=30.0)
    with RunnerPool(lambda name: make_sim_runner(path, name)) as pool:
        # Start the simulated hosts first: each parses the cluster file once, which is the
        # simulator's cost, not the check's (an SSH pool would connect here).
        for name, _ in names:
            pool.get(name)
        start = time.monotonic()
        report = check_network(targets, pool.get, lambda _n: ("hccn_tool", "npu-smi"),
                               options=options)
        wall = time.monotonic() - start

    latency = {"queries": args.query_ms / 1000, "pings": args.ping_ms / 1000}
    bound = sum(max(math.ceil(n / args.per_host) for n in per_host.values()) * latency[phase]
                for phase, per_host in report.commands.items())
    serial = sum(sum(per_host.values()) * latency[phase]
                 for phase, per_host in report.commands.items())
    counts = {phase: sum(per_host.values()) for phase, per_host in report.commands.items()}
    print(f"cluster: {args.hosts} hosts x {args.devices} devices ({soc}), "
          f"{args.query_ms:g} ms/query, {args.ping_ms:g} ms/ping, per-host {args.per_host}")
    print(f"plan: {report.pings.mode} over {report.pings.transport}; commands: {counts}; "
          f"findings: {len(report.findings)}")
    print(f"wall     {wall:8.2f} s")
    print(f"bound    {bound:8.2f} s   (wall / bound = {wall / bound:.2f}, target <= 1.25)")
    print(f"serial   {serial:8.2f} s   (serial / wall = {serial / wall:.0f}x, target >= 50x)")


if __name__ == "__main__":
    main()
