"""The simulated hccn_tool over SSH on several rig hosts at once, parsed into records."""

from __future__ import annotations

from typing import Any

import pytest

from ascend_pd.hccn.client import parse_outcome, query_job
from ascend_pd.hccn.parse import Link, NpuIp, Tls
from ascend_pd.runners import RunnerPool, fan_out
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.sim.faults import apply_fault
from ascend_pd.sim.install import install_tools
from tests.runners.test_ssh import ssh_runner

pytestmark = pytest.mark.rig


def test_hccn_tool_on_two_hosts_in_parallel(rig: Any) -> None:
    hosts = rig.hosts[:2]
    save_cluster(generate_cluster([(h.name, h.address) for h in hosts]), rig.sim_cluster)
    apply_fault(rig.sim_cluster, hosts[1].name, "link-down", device=5)
    tool = str(install_tools(rig.tools_dir)["hccn_tool"])
    jobs = [query_job(h.name, tool, kind, dev)
            for h in hosts for dev in range(8) for kind in ("ip", "link", "tls")]
    with RunnerPool(lambda name: ssh_runner(rig, name)) as pool:
        readings = [parse_outcome(o) for o in fan_out(jobs, pool.get, per_host=4)]
    assert all(r.ok for r in readings), [r for r in readings if not r.ok][:2]
    ips = {(r.host, r.device): r.record.ipaddr for r in readings if isinstance(r.record, NpuIp)}
    assert ips[(hosts[0].name, 0)] == "29.10.1.1"
    assert ips[(hosts[1].name, 7)] == "29.10.2.8"
    down = sorted((r.host, r.device) for r in readings
                  if isinstance(r.record, Link) and not r.record.up)
    assert down == [(hosts[1].name, 5)]
    assert {r.record.switch for r in readings if isinstance(r.record, Tls)} == {0}
