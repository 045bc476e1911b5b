"""Read, write and compare ranktable files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ascend_pd.errors import UsageError
from ascend_pd.findings import Finding
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.ranktable.build import is_host_address
from ascend_pd.ranktable.facts import HostFacts
from ascend_pd.ranktable.plan import HostRef, RanktablePlan, Slot


def dumps(table: dict[str, Any]) -> str:
    # The reference generator writes json.dump(indent=4); keep byte-compatible output.
    return json.dumps(table, indent=4) + "\n"


def write_ranktable(path: str | Path, table: dict[str, Any]) -> Path:
    """Write atomically: readers on the node never see a half-written table."""
    return atomic_write_text(path, dumps(table))


def read_ranktable(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read ranktable {p}: {exc}",
                         hint="pass a file written by `ascend-pd gen-ranktable`") from exc
    if not isinstance(data, dict) or "prefill_device_list" not in data:
        raise UsageError(f"{p} is not a ranktable (no prefill_device_list)",
                         hint="pass the ranktable.json the connector reads")
    return data


def plan_from_table(table: dict[str, Any], names: dict[str, str] | None = None) -> RanktablePlan:
    """The collection plan that reproduces ``table``: its hosts, devices and order.

    Args:
        table: an existing ranktable.
        names: server_id -> spec host name (server_ids are used as names otherwise).
    """
    names = names or {}
    hosts: dict[str, HostRef] = {}
    slots = []
    for role in ("prefill", "decode"):
        for entry in table.get(f"{role}_device_list", []):
            sid = str(entry["server_id"])
            ref = hosts.setdefault(sid, HostRef(names.get(sid, sid), sid))
            slots.append(Slot(role, role, ref.name, int(entry["device_id"])))
    return RanktablePlan(hosts=list(hosts.values()), slots=slots)


def _drift(kind: str, server_id: str, device_id: str | None, recorded: str | None,
           live: str | None) -> Finding:
    """One difference between a ranktable file and what the hosts report now: an error
    finding whose check is the kind of difference."""
    return Finding(severity="error", check=kind, host=server_id,
                   device=None if device_id is None else int(device_id),
                   message=f"file has {recorded!r}, live {live!r}",
                   expected=f"{recorded!r} (the ranktable file)",
                   fix="regenerate and copy it: ascend-pd gen-ranktable -c pd.yaml --push")


def diff_live(
    table: dict[str, Any], plan: RanktablePlan, facts: dict[str, HostFacts]
) -> list[Finding]:
    """Compare every entry of ``table`` with freshly collected facts."""
    drifts: list[Finding] = []
    by_sid = {r.address: r.name for r in plan.hosts}
    reported_hosts: set[str] = set()
    for role in ("prefill", "decode"):
        for entry in table.get(f"{role}_device_list", []):
            sid, dev_id = str(entry["server_id"]), str(entry["device_id"])
            host = facts.get(by_sid[sid])
            if host is None or host.error:
                if sid not in reported_hosts:
                    drifts.append(_drift("unreachable", sid, None, "reachable",
                                        host.error if host else "not collected"))
                    reported_hosts.add(sid)
                continue
            if sid not in reported_hosts and host.addresses is not None and not is_host_address(
                sid, host.addresses
            ):
                drifts.append(_drift("wrong_server_id", sid, None, sid, ", ".join(host.addresses)))
            reported_hosts.add(sid)
            dev = host.devices.get(int(dev_id))
            if dev is None or int(dev_id) not in host.present:
                drifts.append(_drift("missing_device", sid, dev_id, "present", "absent"))
                continue
            if dev.device_ip != entry.get("device_ip"):
                kind = "device_ip_changed" if dev.device_ip else "device_ip_missing"
                drifts.append(_drift(kind, sid, dev_id, entry.get("device_ip"), dev.device_ip))
            if "super_device_id" in entry and dev.super_device_id != entry["super_device_id"]:
                drifts.append(_drift("super_device_id_changed", sid, dev_id,
                                    entry["super_device_id"], dev.super_device_id))
            if "super_pod_id" in entry and dev.super_pod_id != entry["super_pod_id"]:
                drifts.append(_drift("super_pod_id_changed", sid, dev_id,
                                    entry["super_pod_id"], dev.super_pod_id))
    return drifts
