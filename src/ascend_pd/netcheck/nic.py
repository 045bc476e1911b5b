"""The ``nic`` check of check-links: each node IP sits on ``--network-card-name``.

gen_ranktable.sh took the NIC to pick each node's server_id; HCCL_SOCKET_IFNAME and
HCCL_IF_IP must then name that NIC and an address on it, or HCCL cannot open its host
socket (``HCCL function error … error code is 6``). One ``ip -o -4 addr show`` per host,
in parallel; an unreachable host is left to the ``reach`` check.
"""

from __future__ import annotations

from collections.abc import Callable

from ascend_pd.findings import Finding
from ascend_pd.hostnet import IP_ADDR_ARGV, parse_ip_addr
from ascend_pd.netcheck.report import device_finding
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.fanout import Job, fan_out


def nic_findings(
    hosts: list[tuple[str, str]], nic: str, runner_for: Callable[[str], CommandRunner], *,
    max_hosts: int = 64, timeout: float = 15.0,
) -> list[Finding]:
    """A fault for every ``(host, address)`` whose address is not on ``nic``."""
    jobs = [Job(name, IP_ADDR_ARGV, key=address, timeout=timeout) for name, address in hosts]
    out = []
    for outcome in fan_out(jobs, runner_for, max_hosts=max_hosts, per_host=1):
        if not outcome.ok or outcome.result is None:
            continue
        address = str(outcome.job.key)
        found = [a for a in parse_ip_addr(outcome.result.stdout) if a.address == address]
        if any(a.ifname == nic for a in found):
            continue
        observed = (f"{address} is on {', '.join(sorted({a.ifname for a in found}))}" if found
                    else f"{address} is on no NIC of this host")
        out.append(device_finding(
            host=outcome.job.host, device=None, check="nic",
            observed=observed, expected=f"{address} on {nic}",
            fix=f"pass the NIC that carries {address} (--network-card-name "
                f"{found[0].ifname})" if found else
                f"use this host's address in --ips, or add {address} to {nic}"))
    return out
