"""Build HostFacts by hand for the pure ranktable tests."""

from __future__ import annotations

from ascend_pd.ranktable.facts import DeviceFacts, HostFacts


def sdid(server_index: int, dev: int) -> int:
    card, die = divmod(dev, 2)
    return (server_index << 22) | (card << 18) | (die << 16) | dev


def a2_host(name: str, address: str, subnet: int, devices: int = 8) -> HostFacts:
    devs = {
        d: DeviceFacts(device_id=d, card=d, chip=0, device_ip=f"29.10.{subnet}.{d + 1}")
        for d in range(devices)
    }
    return HostFacts(host=name, address=address, soc="a2", devices=devs,
                     present=list(range(devices)), addresses=[address, "172.17.0.1"])


def a3_host(name: str, address: str, server_index: int, pod: str = "0") -> HostFacts:
    devs = {
        d: DeviceFacts(device_id=d, card=d // 2, chip=d % 2,
                       device_ip=f"192.168.{server_index}.{199 - d}",
                       super_device_id=str(sdid(server_index, d)), super_pod_id=pod,
                       server_index=str(server_index))
        for d in range(16)
    }
    return HostFacts(host=name, address=address, soc="a3", devices=devs,
                     present=list(range(16)), addresses=[address])
