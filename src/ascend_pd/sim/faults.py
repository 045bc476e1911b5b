"""Inject and clear faults in a sim cluster file (``ascend-pd sim fault``).

Field faults (link down, a net_health state, TLS on, no IP/gateway/netdetect/certificate,
vNIC down) overwrite the device's field and remember the original in ``faults.saved`` so
``--clear`` restores it. Persisted set-command state for those fields is dropped so the
fault is what the next call sees. Counters and lists (busy, hang, ping loss, latency) live
in ``faults`` / ``latency``. GPU faults (platform cuda hosts) are in ``sim.gpu_faults``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, get_args

from ascend_pd.errors import UsageError
from ascend_pd.sim.cluster import (
    HANG_KINDS,
    NetHealthState,
    PingLoss,
    SimDevice,
    SimHost,
    load_cluster,
    save_cluster,
)
from ascend_pd.sim.gpu_faults import GPU_FAULT_KINDS, apply_gpu_fault
from ascend_pd.sim.state import HostState

#: kind -> {field: value} for faults that replace device fields
FIELD_FAULTS: Final[dict[str, dict[str, Any]]] = {
    "link-down": {"link": "DOWN", "net_health": "Fault"},
    "tls-on": {"tls_switch": 1},
    "no-ip": {"ip": None},
    "no-gateway": {"gateway": None},
    "no-netdetect": {"netdetect": None},
    "no-certificate": {"has_certificate": False},
    "vnic-down": {"vnic_link": "DOWN"},
}
VALUE_FAULTS: Final[tuple[str, ...]] = (
    "net-health", "busy", "ping-loss", "hang", "latency-query", "latency-ping", "latency-set",
)
HOST_FAULTS: Final[dict[str, tuple[str, str, bool]]] = {
    # kind -> (object, attribute, faulty value)
    "not-root": ("host", "root", False),
    "fw-socket-failed": ("firmware", "socket_failed", True),
    "fw-tls-no-preconfigured": ("firmware", "tls_without_preconfigured", True),
    "fw-netdetect-address": ("firmware", "netdetect_address_label", True),
}
FAULT_KINDS: Final[tuple[str, ...]] = (*FIELD_FAULTS, *VALUE_FAULTS, *HOST_FAULTS,
                                       *GPU_FAULT_KINDS)


@dataclass
class FaultResult:
    """What ``apply_fault`` changed."""

    host: str
    kind: str
    cleared: bool
    devices: list[int] = field(default_factory=list)
    value: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"host": self.host, "kind": self.kind, "cleared": self.cleared,
                "devices": self.devices, "value": self.value}


def _set_fields(dev: SimDevice, updates: dict[str, Any], clear: bool) -> list[str]:
    if clear:
        for key in updates:
            if key in dev.faults.saved:
                setattr(dev, key, dev.faults.saved.pop(key))
    else:
        for key, value in updates.items():
            dev.faults.saved.setdefault(key, getattr(dev, key))
            setattr(dev, key, value)
    return list(updates)


def _value_fault(dev: SimDevice, kind: str, value: str | None, clear: bool) -> list[str]:
    if kind == "net-health":
        return _set_fields(dev, {"net_health": value or "Fault"}, clear)
    if kind == "busy":
        dev.faults.busy_calls = 0 if clear else int(value or "1")
        return []
    if kind == "ping-loss":
        if clear:
            dev.faults.ping_loss = [p for p in dev.faults.ping_loss
                                    if value is not None and p.address != value.split(":")[0]]
        else:
            if not value:
                raise UsageError("ping-loss needs --value ADDRESS[:LOST]",
                                 hint="e.g. --value 29.10.2.1:3 (all 3 packets lost)")
            address, _, lost = value.partition(":")
            dev.faults.ping_loss = [*dev.faults.ping_loss,
                                    PingLoss(address=address, lost=int(lost or "3"))]
        return []
    if kind == "hang":
        what = value or "*"
        if what not in HANG_KINDS:
            raise UsageError(f"unknown command kind '{what}' for hang",
                             hint=f"use one of: {', '.join(HANG_KINDS)}")
        keep = [h for h in dev.faults.hang if h != what] if value else []
        dev.faults.hang = keep if clear else [*keep, what]
        return []
    knob = kind.removeprefix("latency-") + "_s"
    setattr(dev.latency, knob, 0.0 if clear else float(value or "0"))
    return []


def _check(kind: str, value: str | None, host: SimHost, device: int | None) -> None:
    if kind not in FAULT_KINDS:
        raise UsageError(f"unknown fault kind '{kind}'",
                         hint=f"use one of: {', '.join(FAULT_KINDS)}")
    if device is not None and host.device(device) is None:
        ids = ", ".join(str(d.phy_id) for d in host.devices)
        raise UsageError(f"host {host.name} has no device {device}", hint=f"devices: {ids}")
    try:
        if kind in ("busy",) and value is not None:
            int(value)
        if kind.startswith("latency-") and value is not None:
            float(value)
    except ValueError as exc:
        raise UsageError(f"--value {value!r} is not a number for {kind}") from exc
    if kind == "net-health" and value is not None:
        states: tuple[str, ...] = get_args(NetHealthState)
        if value not in states:
            raise UsageError(f"unknown net health state '{value}'",
                             hint=f"use one of: {', '.join(states)}")


def apply_fault(
    cluster_path: str | Path, host_name: str, kind: str, *, device: int | None = None,
    value: str | None = None, clear: bool = False,
) -> FaultResult:
    """Inject (or with ``clear`` remove) one fault and save the cluster file.

    Args:
        cluster_path: the sim cluster file.
        host_name: the host to change.
        kind: one of :data:`FAULT_KINDS`.
        device: phy id; None = every device of the host (ignored for host faults).
        value: the kind's argument (net_health state, busy count, ``ADDR[:LOST]``,
            hang command kind, latency seconds).
        clear: remove the fault instead (field faults restore the saved original).

    Raises:
        UsageError: unknown host, device, kind or value.
    """
    cluster = load_cluster(cluster_path)
    host = cluster.host(host_name)
    if host is None:
        raise UsageError(f"host '{host_name}' is not in {cluster_path}",
                         hint=f"use one of: {', '.join(h.name for h in cluster.hosts)}")
    if kind in GPU_FAULT_KINDS:
        slots = apply_gpu_fault(host, kind, device=device, value=value, clear=clear)
        save_cluster(cluster, cluster_path)
        return FaultResult(host_name, kind, clear, slots, value)
    _check(kind, value, host, device)
    result = FaultResult(host_name, kind, clear, value=value)
    state = HostState(cluster_path, host_name)
    if kind in HOST_FAULTS:
        target, attr, bad = HOST_FAULTS[kind]
        setattr(host if target == "host" else host.firmware, attr, (not bad) if clear else bad)
    else:
        for dev in host.devices:
            if device is not None and dev.phy_id != device:
                continue
            if kind in FIELD_FAULTS:
                touched = _set_fields(dev, FIELD_FAULTS[kind], clear)
            else:
                touched = _value_fault(dev, kind, value, clear)
            if touched or kind == "busy":
                state.clear_device(dev.phy_id, touched)
            result.devices.append(dev.phy_id)
    save_cluster(cluster, cluster_path)
    return result
