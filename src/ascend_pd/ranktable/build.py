"""Build the HCCL ranktable (v1.2) from collected facts, validating everything first.

Pure: no I/O. Every problem names host, device and the fix; on any problem no table is made.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from ascend_pd.errors import DeviceIpMissingError, RanktableError
from ascend_pd.findings import Finding
from ascend_pd.npusmi.soc import sdid_decode
from ascend_pd.printer import finding_line
from ascend_pd.ranktable.facts import HostFacts
from ascend_pd.ranktable.plan import RanktablePlan, Slot

#: the checks (``Finding.check``) of a ranktable problem
ProblemKind = Literal[
    "host", "soc", "count", "absent", "no_ip", "dup_ip", "server_id", "super_pod", "sdid", "visible"
]


def _problem(kind: ProblemKind, host: str | None, device: int | None, message: str,
             fix: str) -> Finding:
    """A ranktable problem: an error finding whose check is its kind."""
    return Finding(severity="error", check=kind, message=message, fix=fix, host=host,
                   device=device)


def is_host_address(address: str, addresses: list[str]) -> bool:
    if address in addresses:
        return True
    # The kernel routes all of 127.0.0.0/8 to lo; a host "owns" any loopback address.
    try:
        return ipaddress.ip_address(address).is_loopback and any(
            ipaddress.ip_address(a).is_loopback for a in addresses
        )
    except ValueError:
        return False


def resolve_slots(
    plan: RanktablePlan, facts: dict[str, HostFacts]
) -> tuple[list[Slot], list[Finding]]:
    """Spec mode: the plan's slots. Flag mode: leading devices to prefill, next to decode."""
    if plan.counts is None:
        return list(plan.slots), []
    prefill_cnt, decode_cnt = plan.counts
    ordered = []
    for ref in plan.hosts:
        host = facts.get(ref.name)
        if host is None or host.error:
            continue
        ids = plan.local_device_ids if plan.local_device_ids is not None else host.present
        ordered += [(ref.name, d) for d in ids]
    need = prefill_cnt + decode_cnt
    if need > len(ordered):
        return [], [_problem(
            "count", None, None,
            f"{prefill_cnt} prefill + {decode_cnt} decode devices asked but the cluster "
            f"has {len(ordered)}",
            "lower --prefill-device-cnt/--decode-device-cnt or add hosts to --ips",
        )]
    slots = [Slot("prefill", "prefill", h, d) for h, d in ordered[:prefill_cnt]]
    slots += [Slot("decode", "decode", h, d) for h, d in ordered[prefill_cnt:need]]
    return slots, []


def check(plan: RanktablePlan, facts: dict[str, HostFacts], slots: list[Slot]) -> list[Finding]:
    """Every reason the facts cannot make a correct ranktable for ``slots``."""
    problems: list[Finding] = []
    hosts_used = [r for r in plan.hosts if any(s.host == r.name for s in slots)] or plan.hosts
    socs = {}
    for ref in hosts_used:
        host = facts.get(ref.name)
        if host is None or host.error:
            problems.append(_problem("host", ref.name, None,
                                    f"no device facts ({host.error if host else 'not collected'})",
                                    "fix access to the host (ssh, hccn_tool path) and re-run"))
            continue
        if host.soc:
            socs[ref.name] = host.soc
        if host.addresses is not None and not is_host_address(ref.address, host.addresses):
            problems.append(_problem(
                "server_id", ref.name, None,
                f"server_id {ref.address} is not an address of the host "
                f"(it has {', '.join(host.addresses) or 'none'})",
                "set hosts[].address to the IP vLLM detects on that host (VLLM_HOST_IP), "
                "or the right IP in --ips",
            ))
    if len(set(socs.values())) > 1:
        mix = ", ".join(f"{h}={s}" for h, s in socs.items())
        problems.append(_problem("soc", None, None, f"mixed A2 and A3 hosts ({mix})",
                                "P/D over LLMDataDist needs one hardware generation"))
    seen_ip: dict[str, tuple[str, int]] = {}
    for slot in slots:
        host = facts.get(slot.host)
        if host is None or host.error:
            continue
        dev = host.devices.get(slot.device_id)
        if slot.device_id not in host.present or dev is None:
            problems.append(_problem(
                "absent", slot.host, slot.device_id,
                f"device {slot.device_id} is not present (npu-smi lists {host.present})",
                "use device ids that `npu-smi info -m` shows on that host",
            ))
            continue
        if not dev.device_ip:
            what = "vNIC IP" if host.soc == "a3" else "device IP"
            tool = "-vnic -g" if host.soc == "a3" else "-ip -g"
            problems.append(_problem(
                "no_ip", slot.host, slot.device_id,
                f"no {what} configured ({dev.ip_error or 'empty'}; hccn_tool {tool})",
                f"hccn_tool -i {slot.device_id} -ip -s address <ip> netmask <mask> "
                "(then -netdetect -s and -gateway -s)",
            ))
            continue
        if dev.device_ip in seen_ip:
            other = seen_ip[dev.device_ip]
            problems.append(_problem(
                "dup_ip", slot.host, slot.device_id,
                f"device IP {dev.device_ip} is also used by {other[0]} device {other[1]}",
                "give every device a unique IP (/etc/hccn.conf address_N)",
            ))
        seen_ip.setdefault(dev.device_ip, (slot.host, slot.device_id))
        visible = plan.visible.get(slot.instance, {}).get(slot.host)
        if visible is not None and slot.device_id not in visible:
            problems.append(_problem(
                "visible", slot.host, slot.device_id,
                f"device is outside instance '{slot.instance}' visible devices {visible}",
                "align the instance's devices with the ranktable entries",
            ))
    problems += _check_a3(facts, slots)
    return problems


def _check_a3(facts: dict[str, HostFacts], slots: list[Slot]) -> list[Finding]:
    problems: list[Finding] = []
    seen_sdid: dict[tuple[str, str], tuple[str, int]] = {}
    for name in dict.fromkeys(s.host for s in slots):
        host = facts.get(name)
        if host is None or host.error or host.soc != "a3":
            continue
        devs = [host.devices[s.device_id] for s in slots
                if s.host == name and s.device_id in host.devices]
        pods = {d.super_pod_id for d in devs}
        if len(pods) > 1:
            ids = sorted(map(str, pods))
            problems.append(_problem("super_pod", name, None,
                                    f"devices report different super pod ids {ids}",
                                    "check `npu-smi info -t spod-info` on every card"))
        for dev in devs:
            if dev.super_device_id is None or dev.super_pod_id is None:
                problems.append(_problem("sdid", name, dev.device_id, "no SDID / super pod id",
                                        f"npu-smi info -t spod-info -i {dev.card} -c {dev.chip}"))
                continue
            # SDIDs are unique within one super pod; pods reuse the same server indexes.
            key = (dev.super_pod_id, dev.super_device_id)
            if key in seen_sdid:
                other = seen_sdid[key]
                problems.append(_problem(
                    "sdid", name, dev.device_id,
                    f"SDID {dev.super_device_id} is also {other[0]} device {other[1]}",
                    "a known old-generator bug; re-read spod-info per card and chip",
                ))
            seen_sdid.setdefault(key, (name, dev.device_id))
            decoded = sdid_decode(int(dev.super_device_id))
            card, die = decoded.card, decoded.die
            if (card, die) != (dev.card, dev.chip):
                problems.append(_problem(
                    "sdid", name, dev.device_id,
                    f"SDID {dev.super_device_id} decodes to card {card} die {die}, "
                    f"not card {dev.card} die {dev.chip}",
                    "the spod-info answer belongs to another device; check the card/chip mapping",
                ))
    return problems


def assemble(plan: RanktablePlan, facts: dict[str, HostFacts], slots: list[Slot]) -> dict[str, Any]:
    """The ranktable dict, key order and string values exactly as the connector's format."""
    address = {r.name: r.address for r in plan.hosts}
    lists: dict[str, list[dict[str, str]]] = {"prefill": [], "decode": []}
    for cluster_id, slot in enumerate(slots, start=1):
        host = facts[slot.host]
        dev = host.devices[slot.device_id]
        entry = {
            "server_id": address[slot.host],
            "device_id": str(slot.device_id),
            "device_ip": str(dev.device_ip),
        }
        if host.soc == "a3":
            entry["super_pod_id"] = str(dev.super_pod_id)
            entry["super_device_id"] = str(dev.super_device_id)
        entry["cluster_id"] = str(cluster_id)
        lists[slot.role].append(entry)
    return {
        "version": "1.2",
        "server_count": str(len({s.host for s in slots})),
        "prefill_device_list": lists["prefill"],
        "decode_device_list": lists["decode"],
        "status": "completed",
    }


def build_ranktable(plan: RanktablePlan, facts: dict[str, HostFacts]) -> dict[str, Any]:
    """Validate and build; raise with every problem listed when anything is wrong.

    Raises:
        DeviceIpMissingError: some device has no IP (exit 13), possibly among other problems.
        RanktableError: any other inconsistency (exit 5).
    """
    slots, problems = resolve_slots(plan, facts)
    if not problems:
        problems = check(plan, facts, slots)
    if problems:
        raise problems_error(problems)
    return assemble(plan, facts, slots)


def problems_error(problems: list[Finding]) -> RanktableError:
    head = (finding_line(problems[0], severity=False) if len(problems) == 1
            else f"{len(problems)} problems; nothing was written")
    cls = DeviceIpMissingError if any(p.check == "no_ip" for p in problems) else RanktableError
    err = cls(head, hint="fix the hosts/devices named above and re-run", findings=problems)
    return err
