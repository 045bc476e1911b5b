"""The pure core of the simulated hccn_tool: ``argv + host -> SimReply``.

No I/O here. The caller (``ascend_pd.sim.node``) supplies the host as it is now (cluster
file + persisted state), applies ``updates`` of set commands, holds the tool lock when
``takes_lock`` is set, and honours ``delay_s``. Grammar, messages, streams and exit codes
follow the hccn_tool source (verylucky01/driver@e29d066, src/custom/network/hccn/ascend910B/).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ascend_pd.sim import hccn_text as txt
from ascend_pd.sim.cluster import SimDevice, SimHost
from ascend_pd.sim.ping_sim import Peer, Resolve, hccs_ping, roce_ping

#: A hung command sleeps this long; callers must time out first.
HANG_S: Final[float] = 3600.0
# Other A2/A3 commands the sim does not model: answered as unsupported, not as a typo.
_UNMODELLED: Final[frozenset[str]] = frozenset({
    "optical", "link_stat", "speed", "duplex", "mac", "fec", "mtu", "bandwidth", "stat",
    "route", "arp", "lldp_portid_type", "udp_port_mode", "dscp_tc", "bond",
})
_RESERVED_VNIC_HOST: Final = ipaddress.IPv4Network("192.168.1.0/24")


@dataclass(frozen=True)
class SimReply:
    """What one simulated call prints and how it exits; ``as_tuple()`` gives the 4 basics."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    delay_s: float = 0.0
    device: int | None = None
    #: device fields a successful set command changes (persisted by the caller)
    updates: dict[str, Any] = field(default_factory=dict)
    #: a set command: runs under hccn_tool's lock (a concurrent caller gets "busy")
    takes_lock: bool = False

    def as_tuple(self) -> tuple[int, str, str, float]:
        return self.exit_code, self.stdout, self.stderr, self.delay_s


def _err(code: int, *lines: str, stdout: str = "") -> SimReply:
    return SimReply(code, stdout, "".join(f"{ln}\n" for ln in lines))


def _info(code: int, line: str) -> SimReply:
    # INFO-level messages (busy, unsupported) go to stdout.
    return SimReply(code, f"{line}\n", "")


def busy_reply() -> SimReply:
    """hccn_tool's answer while another caller holds its lock."""
    return _info(11, txt.BUSY)


class _ParamError(Exception):
    def __init__(self, count: bool) -> None:
        super().__init__()
        self.count = count  # True: wrong argument count; False: unknown option


def _pairs(params: Sequence[str], allowed: Sequence[str], required: Sequence[str],
           flags: Sequence[str] = ()) -> dict[str, str]:
    """``key value`` pairs (plus bare ``flags`` at the tail), validated against ``allowed``."""
    params = list(params)
    found: dict[str, str] = {}
    while params and params[-1] in flags:
        found[params.pop()] = ""
    if len(params) % 2:
        raise _ParamError(count=True)
    for key, value in zip(params[::2], params[1::2], strict=True):
        if key not in allowed or key in found:
            raise _ParamError(count=False)
        found[key] = value
    if any(key not in found for key in required):
        raise _ParamError(count=True)
    return found


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", text):
        return None
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


Handler = Callable[[SimHost, SimDevice, list[str], Resolve], SimReply]


def _ip_get(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    _pairs(p, (), ())
    if dev.ip is None:
        return _err(13, txt.NO_IP)
    return SimReply(0, f"ipaddr:{dev.ip}\nnetmask:{dev.netmask}\n")


def _ip_set(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    args = _pairs(p, ("address", "netmask"), ("address", "netmask"))
    addr, mask = _ipv4(args["address"]), _ipv4(args["netmask"])
    if addr is None or mask is None:
        return _err(6, txt.INVALID_IP)
    try:
        ipaddress.IPv4Network(f"{addr}/{mask}", strict=False)
    except ValueError:
        return _err(6, txt.INVALID_IP)
    if addr in _RESERVED_VNIC_HOST or any(
        d.ip == str(addr) for d in host.devices if d.phy_id != dev.phy_id
    ):
        return _err(7, txt.IP_CONFLICT)
    return _set({"ip": str(addr), "netmask": str(mask)})


def _set(updates: dict[str, Any], stdout: str = "") -> SimReply:
    return SimReply(0, f"{stdout}{txt.SUCCESS}\n", "", updates=updates, takes_lock=True)


def _vnic_get(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    _pairs(p, (), ())
    if dev.vnic_ip is None:
        return _err(1, txt.EXEC_FAILED)
    return SimReply(0, f"vnic link status: {dev.vnic_link}\nvnic ipaddr: {dev.vnic_ip}\n"
                       f"vnic netmask: {dev.vnic_netmask}\n")


def _link_get(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    _pairs(p, (), ())
    return SimReply(0, f"link status: {dev.link}\n")


def _link_set(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    if len(p) != 1:
        raise _ParamError(count=True)
    if p[0] == "up":
        health = "Success" if dev.net_health == "Fault" else dev.net_health
        return _set({"link": "UP", "net_health": health})
    if p[0] == "down":
        return _set({"link": "DOWN", "net_health": "Fault"})
    raise _ParamError(count=False)


def _net_health_get(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    _pairs(p, (), ())
    state: str = dev.net_health
    if state == "Socket fail" and host.firmware.socket_failed:
        state = "Socket failed"
    return SimReply(0, f"net health status: {state}\n")


def _netdetect_get(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    _pairs(p, (), ())
    label = "address" if host.firmware.netdetect_address_label else "addr"
    return SimReply(0, f"netdetect {label}: {dev.netdetect or '0.0.0.0'}\n")


def _netdetect_set(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    addr = _ipv4(_pairs(p, ("address",), ("address",))["address"])
    if addr is None:
        return _err(6, txt.INVALID_IP)
    subnet = dev.subnet()
    if addr == ipaddress.IPv4Address("255.255.255.255") or (
        subnet is not None and subnet.prefixlen < 31 and addr == subnet.broadcast_address
    ):
        return _err(37, txt.BROADCAST)
    return _set({"netdetect": str(addr)})


def _gateway_get(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    _pairs(p, (), ())
    if dev.gateway is None:
        return _err(2, txt.NO_GATEWAY)
    return SimReply(0, f"default gateway:{dev.gateway}, Iface:eth{dev.phy_id}\n")


def _gateway_set(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    addr = _ipv4(_pairs(p, ("gateway",), ("gateway",))["gateway"])
    if addr is None:
        return _err(6, txt.INVALID_IP)
    subnet = dev.subnet()
    if subnet is None:
        return _err(26, txt.GATEWAY_NO_IP)
    if addr not in subnet:
        return _err(8, txt.GATEWAY_SUBNET)
    return _set({"gateway": str(addr)})


def _tls_get(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    _pairs(p, (), ())
    if not dev.has_certificate:
        return _err(14, txt.NO_CERT)
    pre = ("" if host.firmware.tls_without_preconfigured else
           f", tls preconfigured[{dev.tls_preconfigured}](0:non-preset, 1:preset)")
    head = (f"dev_id:{dev.phy_id}, tls switch[{dev.tls_switch}](0:disable, 1:enable){pre}, "
            "tls alarm time threshold[60]days\n")
    return SimReply(0, head + txt.tls_cert_blocks(dev.phy_id))


def _tls_set(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    value = _pairs(p, ("enable",), ("enable",), flags=("host",))["enable"]
    if value not in ("0", "1"):
        return _err(16, txt.INVALID_ENABLE, stdout=txt.needs_parameters("tls"))
    warn = f"{txt.PRESET_CERT_WARNING}\n" if value == "1" and dev.tls_preconfigured else ""
    return _set({"tls_switch": int(value)}, warn)


def _lldp_get(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    _pairs(p, (), ())
    if dev.lldp_port is None or dev.link == "DOWN":
        return SimReply(0)  # [I] no neighbour: empty output
    mac = f"38:ad:be:{host.server_index:02x}:{dev.card:02x}:{dev.phy_id:02x}"
    text = txt.lldp_text(dev.lldp_port, dev.lldp_system_name or "switch", mac, "26.0.0.1")
    return SimReply(0, text)


def _ping(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    args = _pairs(p, ("address", "pkt"), ("address",))
    if "pkt" in args and not (args["pkt"].isdigit() and int(args["pkt"]) <= 65507):
        return _err(1, txt.INVALID_PARAMS)
    if _ipv4(args["address"]) is None:
        return _err(6, txt.INVALID_IP)
    if dev.link == "DOWN":
        return _err(22, txt.LINK_DOWN)
    if dev.ip is None:
        return _err(1, txt.EXEC_FAILED)
    out, ok = roce_ping(host, dev, args["address"], r)
    return SimReply(0, out) if ok else SimReply(1, out, f"{txt.EXEC_FAILED}\n")


def _hccs_ping(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    if not host.hccs_supported:
        return _info(13, txt.NOT_SUPPORTED)
    args = _pairs(p, ("address", "sdid", "pkt", "cnt", "interval", "timeout"), ())
    if ("address" in args) == ("sdid" in args):
        raise _ParamError(count=True)
    limits = {"pkt": (1792, 3000), "cnt": (1, 1000), "interval": (0, 10), "timeout": (1, 20000)}
    for key, (low, high) in limits.items():
        if key in args and not (args[key].isdigit() and low <= int(args[key]) <= high):
            return _err(1, txt.INVALID_PARAMS)
    if "address" in args and _ipv4(args["address"]) is None:
        return _err(6, txt.INVALID_IP)
    target = args.get("address") or f"sdid:{args['sdid']}"
    out, ok = hccs_ping(host, dev, target, int(args.get("cnt", "3")), r)
    return SimReply(0, out) if ok else SimReply(1, out, f"{txt.EXEC_FAILED}\n")


def _cfg(host: SimHost, dev: SimDevice, p: list[str], r: Resolve) -> SimReply:
    if p:
        raise _ParamError(count=True)
    return _set({})


#: attr -> {sub-option -> handler}
COMMANDS: Final[dict[str, dict[str, Handler]]] = {
    "ip": {"-g": _ip_get, "-s": _ip_set},
    "vnic": {"-g": _vnic_get},
    "link": {"-g": _link_get, "-s": _link_set},
    "net_health": {"-g": _net_health_get},
    "netdetect": {"-g": _netdetect_get, "-s": _netdetect_set},
    "gateway": {"-g": _gateway_get, "-s": _gateway_set},
    "tls": {"-g": _tls_get, "-s": _tls_set},
    "lldp": {"-g": _lldp_get},
    "ping": {"-g": _ping},
    "hccs_ping": {"-g": _hccs_ping},
    "cfg": {"recovery": _cfg},
}


def command_kind(argv: Sequence[str]) -> str:
    """``query``, ``ping`` or ``set``: which latency knob applies to ``argv``."""
    attr = argv[3][1:] if len(argv) > 4 else ""
    if attr in ("ping", "hccs_ping"):
        return "ping"
    return "set" if len(argv) > 4 and argv[4] != "-g" else "query"


def simulate_hccn(argv: Sequence[str], host: SimHost, resolve: Resolve | None = None) -> SimReply:
    """Answer one hccn_tool invocation on ``host`` (as it is now).

    Args:
        argv: the full argv (argv[0] is the tool's path; only its arguments matter).
        host: the simulated host with persisted state applied.
        resolve: address (or ``sdid:<n>``) -> :class:`Peer` anywhere in the cluster, for pings.
    """
    lookup: Resolve = resolve or (lambda _addr: None)
    args = list(argv[1:])
    if not args or len(args) >= 63:
        return _err(2, txt.MAJOR_NUMBER, txt.SEE_HELP)
    if args[0] in ("-h", "--help"):
        return SimReply(0, txt.full_help())
    if any(len(a) > 900 for a in args):
        return _err(5, txt.PARAM_LEN)
    if args[0] == "-a":
        if args[1:] == ["-cfg", "recovery"]:
            return _set({})
        return _err(3, txt.MAJOR_CMD, txt.SEE_HELP)
    if args[0] != "-i":
        return _err(1, txt.MAJOR_TYPE, txt.SEE_HELP)
    if len(args) < 3:
        return _err(2, txt.MAJOR_NUMBER, txt.SEE_HELP)
    if not re.fullmatch(r"\d{1,2}", args[1]) or host.device(int(args[1])) is None:
        return _err(4, txt.INVALID_DEVICE)
    dev = host.device(int(args[1]))
    assert dev is not None
    name = args[2][1:] if args[2].startswith("-") else ""
    if name in _UNMODELLED:
        return _info(13, txt.NOT_SUPPORTED)
    ops = COMMANDS.get(name)
    if ops is None:
        return _err(3, txt.MAJOR_CMD, txt.SEE_HELP)
    if len(args) < 4:
        return _err(4, txt.ARG_COUNT, stdout=txt.needs_parameters(name))
    handler = ops.get(args[3])
    if handler is None:
        return _err(3, txt.UNKNOWN_OPTION, stdout=txt.needs_parameters(name))
    try:
        reply = handler(host, dev, args[4:], lookup)
    except _ParamError as exc:
        message = txt.ARG_COUNT if exc.count else txt.UNKNOWN_OPTION
        return _err(4 if exc.count else 3, message, stdout=txt.needs_parameters(name))
    if reply.takes_lock and not host.root:
        return _err(12, txt.PERMISSION)
    hung = "*" in dev.faults.hang or name in dev.faults.hang
    latency = _latency(host, dev, command_kind(argv))
    return SimReply(reply.exit_code, reply.stdout, reply.stderr,
                    HANG_S if hung else latency, dev.phy_id, reply.updates, reply.takes_lock)


def _latency(host: SimHost, dev: SimDevice, kind: str) -> float:
    knob = {"query": "query_s", "ping": "ping_s", "set": "set_s"}[kind]
    return float(getattr(host.latency, knob)) + float(getattr(dev.latency, knob))


__all__ = ["HANG_S", "Peer", "Resolve", "SimReply", "busy_reply", "simulate_hccn"]
