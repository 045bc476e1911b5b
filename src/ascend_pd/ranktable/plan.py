"""Which device of which host goes where in the ranktable, before anything is collected.

Two ways in: a spec (instances in order, prefill first) or the legacy gen_ranktable.sh flags
(IPs prefill-first, leading devices to prefill). Both give an ordered list of slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ascend_pd.errors import UsageError
from ascend_pd.spec.models import ClusterSpec

Role = Literal["prefill", "decode"]


@dataclass(frozen=True)
class Slot:
    """One ranktable entry to be: host + physical device, owned by an instance."""

    role: Role
    instance: str
    host: str
    device_id: int


@dataclass(frozen=True)
class HostRef:
    name: str
    address: str


@dataclass
class RanktablePlan:
    """Hosts to collect from and the ordered slots; ``counts`` is set in flag mode."""

    hosts: list[HostRef]
    slots: list[Slot] = field(default_factory=list)
    #: flag mode: devices to take per role, from the devices found (prefill first)
    counts: tuple[int, int] | None = None
    #: flag mode: restrict each host to these device ids
    local_device_ids: list[int] | None = None
    #: instance name -> visible devices per host (ASCEND_RT_VISIBLE_DEVICES)
    visible: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def devices_for(self, host: str) -> list[int] | None:
        """Devices to collect on ``host`` (None = every device present)."""
        if self.counts is not None:
            return self.local_device_ids
        return sorted({s.device_id for s in self.slots if s.host == host})


def plan_from_spec(spec: ClusterSpec) -> RanktablePlan:
    """Prefill instances first, then decode; hosts in instance order; devices in TP order."""
    plan = RanktablePlan(hosts=[HostRef(h.name, h.address) for h in spec.hosts])
    used = set()
    for role, inst in spec.instances:
        plan.visible[inst.name] = {h: list(inst.devices) for h in inst.hosts}
        for host in inst.hosts:
            used.add(host)
            for dev in inst.devices:
                plan.slots.append(Slot(role, inst.name, host, dev))
    plan.hosts = [h for h in plan.hosts if h.name in used]
    return plan


def plan_from_flags(
    ips: list[str], prefill_cnt: int, decode_cnt: int, local_device_ids: list[int] | None = None
) -> RanktablePlan:
    """The legacy gen_ranktable.sh contract: IPs prefill-first; host names are the IPs."""
    if not ips:
        raise UsageError("--ips needs at least one address", hint="--ips 10.0.0.1 10.0.0.2")
    if len(set(ips)) != len(ips):
        raise UsageError("--ips lists an address twice", hint="give each node once")
    if prefill_cnt < 1 or decode_cnt < 1:
        raise UsageError("--prefill-device-cnt and --decode-device-cnt must be at least 1",
                         hint="e.g. --prefill-device-cnt 8 --decode-device-cnt 8")
    return RanktablePlan(
        hosts=[HostRef(ip, ip) for ip in ips],
        counts=(prefill_cnt, decode_cnt),
        local_device_ids=local_device_ids,
    )
