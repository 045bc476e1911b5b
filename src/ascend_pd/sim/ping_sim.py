"""Simulated RoCE (``-ping``) and HCCS (``-hccs_ping``) pings: reachability and text.

Reachability is derived from the topology: the target must be a device address known to
the cluster, both ends up and addressed, the subnets routable (same subnet, or a gateway
on the source), never the other die of the same A3 card over RoCE, minus injected loss.
Times are deterministic (hash of the pair and sequence number) so outputs are repeatable.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from ascend_pd.sim.cluster import SimDevice, SimHost


@dataclass(frozen=True)
class Peer:
    """A device somewhere in the cluster, as it is now."""

    host: SimHost
    device: SimDevice


#: address (RoCE or vNIC IP) or ``sdid:<n>`` -> the device that owns it
Resolve = Callable[[str], Peer | None]


def _jitter(*parts: object) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 0xFFFFFFFF


def _loss(dev: SimDevice, target: str, sent: int) -> int:
    return min(sent, sum(f.lost for f in dev.faults.ping_loss if f.address == target))


def roce_lost(host: SimHost, dev: SimDevice, target: str, peer: Peer | None) -> int:
    """How many of the 3 RoCE packets to ``target`` are lost."""
    if peer is None or peer.device.ip != target or peer.device.link == "DOWN":
        return 3
    if peer.host.name == host.name and host.soc == "a3" and peer.device.card == dev.card \
            and peer.device.phy_id != dev.phy_id:
        return 3  # the two dies of one A3 card cannot reach each other over RoCE
    subnet = dev.subnet()
    if subnet is not None and ipaddress.IPv4Address(target) not in subnet and dev.gateway is None:
        return 3  # off-subnet with no default route
    return _loss(dev, target, 3)


def roce_ping(host: SimHost, dev: SimDevice, target: str, resolve: Resolve) -> tuple[str, bool]:
    """The stdout of ``-ping -g address TARGET`` and whether it succeeded (no loss)."""
    lost = roce_lost(host, dev, target, resolve(target))
    lines = [f"device {dev.phy_id} PING {target}"]
    for seq in range(3):
        if seq < lost:
            lines.append(f"recv time out seq={seq}")
        else:
            ms = 0.03 + 0.1 * _jitter(host.name, dev.phy_id, target, seq)
            if seq == 0:
                ms += 0.05  # the first packet pays for the QP set-up
            lines.append(f"recv seq={seq},time={ms:.6f}ms")
    received = 3 - lost
    lines.append(f"3 packets transmitted, {received} received, "
                 f"{100.0 * lost / 3:.2f}% packet loss")
    return "".join(f"{ln}\n" for ln in lines), lost == 0


def _us(ns: int) -> str:
    return f"{ns // 1000}.{ns % 1000:03d}us"


def hccs_ping(
    host: SimHost, dev: SimDevice, target: str, count: int, resolve: Resolve
) -> tuple[str, bool]:
    """The stdout of ``-hccs_ping -g address|sdid TARGET [cnt N]`` and whether all arrived."""
    peer = resolve(target)
    shown = target.removeprefix("sdid:")
    reachable = (
        peer is not None and peer.device.vnic_ip is not None and peer.device.vnic_link == "UP"
        and peer.host.hccs_supported and dev.vnic_link == "UP"
    )
    lost = count if not reachable else _loss(dev, shown, count)
    # Embedded "\n" in the format plus the macro's own "\n": a blank line after each.
    out = [f"device {dev.phy_id} PING {shown}\n\n"]
    times: list[int] = []
    for seq in range(count):
        if seq < lost:
            out.append("This pkt check recv msg fail!\n\n")  # [I] no lost-packet capture
            continue
        ns = 9000 + int(6000 * _jitter(host.name, dev.phy_id, shown, seq))
        times.append(ns)
        out.append(f"This pkt ping success!\nrecv seq {seq}, time = {_us(ns)}, "
                   "L1 plane check result = 0x0\n\n")
    received = count - lost
    out.append(f"{count} packets transmitted, {received} received, "
               f"{100.0 * lost / count:.2f}% packets loss\n")
    ordered = sorted(times) or [0]
    tp95 = ordered[max(0, -(-95 * len(ordered) // 100) - 1)]
    out.append(f"max time {_us(ordered[-1])}\nmin time {_us(ordered[0])}\n"
               f"average time {_us(sum(ordered) // len(ordered))}\nTP95 time {_us(tp95)}\n")
    return "".join(out), lost == 0
