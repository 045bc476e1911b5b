"""Collect device facts from every host in parallel, through the runners.

Per host: ``npu-smi info -m`` (physical ids and A2/A3) and the host's IPv4 addresses; then per
device ``hccn_tool -i N -ip -g`` (A2) or ``-vnic -g`` plus ``npu-smi info -t spod-info`` (A3).
A host that fails is recorded with its error; the others carry on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Final

from ascend_pd.errors import AscendPDError
from ascend_pd.hccn.client import parse_outcome, query_job
from ascend_pd.hccn.commands import Query
from ascend_pd.hccn.parse import NpuIp, Vnic
from ascend_pd.hostnet import IP_ADDR_ARGV, parse_ip_addr
from ascend_pd.npusmi import commands as smi_commands
from ascend_pd.npusmi.parse import NpuMapping, parse_mapping, parse_spod
from ascend_pd.ranktable.facts import DeviceFacts, HostFacts
from ascend_pd.ranktable.plan import RanktablePlan
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.fanout import Job, Outcome, fan_out

ToolPaths = Callable[[str], tuple[str, str]]
Progress = Callable[[Outcome, int, int], None]

#: Parallelism defaults: hccn_tool serialises on a per-host lock for sets, but queries of
#: different devices run side by side; 8 in flight per host keeps each host busy without
#: tripping the busy answer (which is retried anyway).
MAX_HOSTS: Final[int] = 128
PER_HOST: Final[int] = 8


def _describe(outcome: Outcome) -> str:
    if outcome.error is not None:
        return outcome.error.message
    assert outcome.result is not None
    return outcome.result.tail("stderr", 2) or outcome.result.tail("stdout", 2) or (
        f"exit {outcome.result.exit_code}")


def collect_facts(
    plan: RanktablePlan, runner_for: Callable[[str], CommandRunner], tool_paths: ToolPaths, *,
    max_hosts: int = MAX_HOSTS, per_host: int = PER_HOST, on_done: Progress | None = None,
    nic_for: Callable[[str], str | None] | None = None,
) -> dict[str, HostFacts]:
    """Collect what ``plan`` needs from each of its hosts (never raises for a host failure).

    Args:
        nic_for: host -> NIC whose addresses count for the server_id check (None = any NIC).
    """
    facts = {r.name: HostFacts(host=r.name, address=r.address) for r in plan.hosts}
    first: list[Job] = []
    for ref in plan.hosts:
        _hccn, smi = tool_paths(ref.name)
        first.append(Job(ref.name, smi_commands.info_mapping(smi), key=("map", ref.name)))
        first.append(Job(ref.name, IP_ADDR_ARGV, key=("addr", ref.name), timeout=15))
    mappings: dict[str, NpuMapping] = {}
    for outcome in fan_out(first, runner_for, max_hosts=max_hosts, per_host=per_host,
                           on_done=on_done):
        kind = str(outcome.job.key[0])  # type: ignore[index]
        host = facts[outcome.job.host]
        if kind == "addr":
            if outcome.ok and outcome.result is not None:
                nic = nic_for(host.host) if nic_for else None
                host.addresses = [a.address for a in parse_ip_addr(outcome.result.stdout)
                                  if nic is None or a.ifname == nic]
            continue
        if not outcome.ok or outcome.result is None:
            host.error = f"npu-smi info -m failed: {_describe(outcome)}"
            continue
        try:
            mapping = parse_mapping(outcome.result.stdout, outcome.result.stderr,
                                    outcome.result.exit_code)
        except AscendPDError as exc:
            host.error = f"npu-smi info -m: {exc.message}"
            continue
        mappings[host.host] = mapping
        host.soc = mapping.soc
        host.present = list(mapping.phy_ids)

    second: list[Job] = []
    cards: dict[tuple[str, int], tuple[int, int]] = {}
    for name, mapping in mappings.items():
        hccn, smi = tool_paths(name)
        wanted = plan.devices_for(name)
        for row in mapping.devices:
            if row.phy_id is None or (wanted is not None and row.phy_id not in wanted):
                continue
            cards[(name, row.phy_id)] = (row.card, row.chip)
            query: Query = "vnic" if mapping.soc == "a3" else "ip"
            second.append(query_job(name, hccn, query, row.phy_id))
            if mapping.soc == "a3":
                second.append(Job(name, smi_commands.spod_info(smi, row.card, row.chip),
                                  key=("spod", name, row.phy_id)))
    for outcome in fan_out(second, runner_for, max_hosts=max_hosts, per_host=per_host,
                           on_done=on_done):
        _absorb(facts, cards, outcome)
    return facts


def _absorb(facts: dict[str, HostFacts], cards: dict[tuple[str, int], tuple[int, int]],
            outcome: Outcome) -> None:
    key = outcome.job.key
    name = outcome.job.host
    host = facts[name]
    if isinstance(key, tuple) and key and key[0] == "spod":
        dev_id = int(key[2])
        dev = host.devices.get(dev_id) or DeviceFacts(dev_id, *cards[(name, dev_id)], None)
        if outcome.result is None:
            host.devices[dev_id] = replace(dev, ip_error=dev.ip_error)
            return
        try:
            spod = parse_spod(outcome.result.stdout, outcome.result.stderr,
                              outcome.result.exit_code)
        except AscendPDError:
            return
        host.devices[dev_id] = replace(
            dev, super_device_id=None if spod.sdid is None else str(spod.sdid),
            super_pod_id=None if spod.super_pod_id is None else str(spod.super_pod_id),
            server_index=None if spod.server_index is None else str(spod.server_index))
        return
    reading = parse_outcome(outcome)
    card, chip = cards[(name, reading.device)]
    dev = host.devices.get(reading.device) or DeviceFacts(reading.device, card, chip, None)
    if isinstance(reading.record, (NpuIp, Vnic)):
        ip = _address_of(reading.record)
        said = outcome.result.tail("stderr", 1) if outcome.result else ""
        dev = replace(dev, device_ip=ip,
                      ip_error=None if ip else (said or "the tool printed no address"))
    elif reading.failure is not None:
        # exit -1 with no output: the SSH channel closed without an exit status
        dev = replace(dev, device_ip=None, ip_error=reading.failure.message or (
            f"exited {reading.failure.exit_code} with no output"))
    elif reading.error is not None:
        dev = replace(dev, device_ip=None, ip_error=reading.error.message)
    host.devices[reading.device] = dev


def _address_of(record: NpuIp | Vnic) -> str | None:
    return record.ipaddr or None
