"""What a network check covers: the hosts, their devices, who is prefill and who is decode.

Three ways in, each reusing the ranktable planner so that check-links and gen-ranktable
always agree on the layout:

- a spec (``targets_from_spec``): instances in order, prefill first;
- an existing ranktable (``targets_from_ranktable``): its entries, plus the device IP each
  entry promises, which the check then compares with what the device reports;
- the legacy gen_ranktable.sh flags (``targets_from_flags``): the devices are not known until
  ``npu-smi info -m`` ran on each host, so the targets are completed by :func:`resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ascend_pd.errors import UsageError
from ascend_pd.netcheck.pingplan import Endpoint
from ascend_pd.ranktable.build import resolve_slots
from ascend_pd.ranktable.facts import HostFacts
from ascend_pd.ranktable.io import plan_from_table
from ascend_pd.ranktable.plan import RanktablePlan, Slot, plan_from_flags, plan_from_spec
from ascend_pd.spec.models import ClusterSpec

Soc = Literal["a2", "a3"]
Source = Literal["spec", "flags", "ranktable"]


@dataclass(frozen=True)
class TargetHost:
    """A host to check: its name (runner key) and its address (ranktable server_id)."""

    name: str
    address: str


@dataclass(frozen=True)
class Targets:
    """The hosts, devices and roles of one check.

    Attributes:
        source: where the layout came from.
        hosts: hosts in report order.
        slots: (role, instance, host, device) entries; empty until resolved in flag mode.
        soc: ``a2`` / ``a3``; None until discovered (flag mode).
        expected_ip: (host, device) -> the device IP a ranktable promises.
        pending: flag mode only: the unresolved plan (device counts per role).
    """

    source: Source
    hosts: list[TargetHost]
    slots: list[Slot] = field(default_factory=list)
    soc: Soc | None = None
    expected_ip: dict[tuple[str, int], str] = field(default_factory=dict)
    pending: RanktablePlan | None = None

    @property
    def needs_discovery(self) -> bool:
        """True while the devices of each host are still unknown (legacy flags)."""
        return self.pending is not None

    def devices(self, host: str) -> list[int]:
        """Devices of ``host`` that take part, ascending."""
        return sorted({s.device_id for s in self.slots if s.host == host})

    def endpoints(self, role: Literal["prefill", "decode"]) -> list[Endpoint]:
        """Distinct (host, device) endpoints of ``role``, in slot order."""
        seen: dict[tuple[str, int], Endpoint] = {}
        for slot in self.slots:
            if slot.role == role:
                seen.setdefault((slot.host, slot.device_id),
                                Endpoint(slot.host, slot.device_id, role))
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "soc": self.soc,
            "hosts": [{"name": h.name, "address": h.address, "devices": self.devices(h.name),
                       "roles": sorted({s.role for s in self.slots if s.host == h.name})}
                      for h in self.hosts],
        }


def targets_from_spec(spec: ClusterSpec) -> Targets:
    """Every device of every instance in ``spec``; the SoC is the spec's ``hardware``."""
    plan = plan_from_spec(spec)
    return Targets("spec", [TargetHost(h.name, h.address) for h in plan.hosts],
                   list(plan.slots), spec.hardware)


def targets_from_ranktable(table: dict[str, Any], names: dict[str, str] | None = None) -> Targets:
    """The entries of an existing ranktable and the device IP each one promises.

    Args:
        table: a ranktable (``ranktable.io.read_ranktable``).
        names: server_id -> host name (e.g. from a spec); server_ids are names otherwise.
    """
    plan = plan_from_table(table, names)
    names = names or {}
    expected: dict[tuple[str, int], str] = {}
    a3 = False
    for role in ("prefill", "decode"):
        for entry in table.get(f"{role}_device_list", []):
            sid = str(entry["server_id"])
            if entry.get("device_ip"):
                expected[(names.get(sid, sid), int(entry["device_id"]))] = str(entry["device_ip"])
            # Only A3 tables carry super_device_id (the SDID); A2 entries never do.
            a3 = a3 or "super_device_id" in entry
    if not plan.slots:
        raise UsageError("the ranktable lists no devices",
                         hint="pass the ranktable.json the connector reads")
    return Targets("ranktable", [TargetHost(h.name, h.address) for h in plan.hosts],
                   list(plan.slots), "a3" if a3 else "a2", expected)


def targets_from_flags(
    ips: list[str], prefill_cnt: int, decode_cnt: int, local_device_ids: list[int] | None = None
) -> Targets:
    """The legacy contract: IPs prefill-first, leading devices to prefill (resolved later)."""
    plan = plan_from_flags(ips, prefill_cnt, decode_cnt, local_device_ids)
    return Targets("flags", [TargetHost(h.name, h.address) for h in plan.hosts], pending=plan)


def resolve(targets: Targets, present: dict[str, list[int]], soc: Soc | None) -> Targets:
    """Complete flag-mode targets once ``npu-smi info -m`` told which devices each host has.

    Args:
        targets: flag-mode targets.
        present: host -> physical device ids found (hosts that could not be asked: absent).
        soc: the SoC seen on the hosts that answered.

    Raises:
        UsageError: more devices were asked for than the hosts have.
    """
    plan = targets.pending
    if plan is None:
        return targets
    # A host that could not be asked is assumed to look like the others, so the layout of
    # the remaining hosts does not shift; it is reported as unreachable anyway.
    typical = next(iter(present.values()), None) or list(range(16 if soc == "a3" else 8))
    facts = {h.name: HostFacts(h.name, h.address, soc=soc, present=present.get(h.name, typical))
             for h in targets.hosts}
    slots, problems = resolve_slots(plan, facts)
    if problems:
        raise UsageError(problems[0].message, hint=problems[0].fix)
    return replace(targets, slots=slots, soc=soc or "a2", pending=None)
