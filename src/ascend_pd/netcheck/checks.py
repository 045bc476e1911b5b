"""Pure evaluation: hccn_tool readings in, findings out (no I/O, deterministic).

Rules (vllm-ascend installation.md): link UP; net_health Success (Init: warning); netdetect set
and inside the device subnet; gateway present and inside the subnet; RoCE IP present and
unique (A3: vNIC IP present, vNIC link UP); the IP a ranktable promises equals the live one;
TLS switch identical on every device of every host ("no certificate" counts as off); an LLDP
neighbour per device (warning unless required). Consequences are not double-reported: with
the link DOWN, net_health and LLDP are not judged; without an IP, the subnet checks and the
pings that need it are skipped.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ascend_pd.errors import CommandTimeoutError
from ascend_pd.findings import Finding, Peer
from ascend_pd.hccn.client import HccnReading
from ascend_pd.hccn.commands import Query
from ascend_pd.hccn.parse import Gateway, Link, Lldp, NetDetect, NetHealth, NpuIp, Tls, Vnic
from ascend_pd.hccn.ping import Ping
from ascend_pd.netcheck.guard import DeviceHungError
from ascend_pd.netcheck.pingplan import PingPair
from ascend_pd.netcheck.report import Skipped, device_finding
from ascend_pd.netcheck.targets import Targets

Key = tuple[str, int]
Transport = Literal["roce", "hccs"]
A2_QUERIES: tuple[Query, ...] = ("link", "net_health", "netdetect", "gateway", "ip", "tls", "lldp")
A3_QUERIES: tuple[Query, ...] = (*A2_QUERIES, "vnic")


@dataclass
class Evaluation:
    """Per-device verdicts plus what the ping phase needs (addresses, blocked devices)."""

    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    evaluated: Counter[str] = field(default_factory=Counter)
    #: (host, device) -> the address peers ping (RoCE IP, or vNIC IP over HCCS)
    addresses: dict[Key, str] = field(default_factory=dict)
    #: (host, device) -> why it cannot take part in pings
    blocked: dict[Key, str] = field(default_factory=dict)
    tls_reference: int | None = None
    #: (host, device) -> its subnet, for devices without a gateway (no route off-subnet)
    no_gateway: dict[Key, ipaddress.IPv4Network] = field(default_factory=dict)
    #: (host, device) -> TLS switch (0 when there is no certificate)
    tls_values: dict[Key, int] = field(default_factory=dict)

    def fault(self, host: str, dev: int | None, check: str, observed: str, expected: str,
              fix: str, *, warning: bool = False, peer: Peer | None = None) -> None:
        self.findings.append(device_finding(host, dev, check, observed, expected, fix,
                                            warning=warning, peer=peer))


def _subnet(ip: NpuIp | None) -> ipaddress.IPv4Network | None:
    if ip is None or ip.ipaddr is None or ip.netmask is None:
        return None
    try:
        return ipaddress.IPv4Network(f"{ip.ipaddr}/{ip.netmask}", strict=False)
    except ValueError:
        return None


def _inside(address: str, subnet: ipaddress.IPv4Network) -> bool:
    try:
        return ipaddress.IPv4Address(address) in subnet
    except ValueError:
        return False


def hang_finding(host: str, dev: int, command: str, timeout_s: float) -> Finding:
    """The one finding for a device whose hccn_tool stopped answering."""
    return device_finding(host, dev, "hang", f"no answer within {timeout_s:g} s to `{command}`",
                          "every hccn_tool command answers within its timeout",
                          f"check the device (npu-smi info -t health -i <card>), then "
                          f"hccn_tool -i {dev} -cfg recovery")


def _failed(reading: HccnReading) -> tuple[str, str]:
    """(what happened, what to do) for a query that produced no record."""
    if reading.failure is not None:
        return reading.failure.message or reading.failure.kind, reading.failure.hint
    err = reading.error
    return (err.message if err else "no answer"), (err.hint if err and err.hint else
                                                   "re-run with -v and check the host")


class _Device:
    """Evaluates one device's records; collects the facts the cluster-wide rules need."""

    def __init__(self, ev: Evaluation, targets: Targets, host: str, dev: int,
                 rs: dict[Query, HccnReading], transport: Transport, require_lldp: bool) -> None:
        self.ev, self.targets, self.host, self.dev = ev, targets, host, dev
        self.rs, self.transport, self.require_lldp = rs, transport, require_lldp

    def rec(self, kind: Query) -> object | None:
        reading = self.rs.get(kind)
        if reading is None or reading.record is None:
            if reading is not None and not isinstance(reading.error, CommandTimeoutError):
                observed, fix = _failed(reading)
                self.ev.fault(self.host, self.dev, kind, f"`-{kind} -g` failed: {observed}",
                              "a valid answer", fix)
            elif reading is not None:
                self.ev.skipped.append(Skipped(self.host, self.dev, kind,
                                               "the device stopped answering"))
            return None
        self.ev.evaluated[kind] += 1
        return reading.record

    def run(self) -> None:
        host, dev, f = self.host, self.dev, self.ev.fault
        link = self.rec("link")
        down = isinstance(link, Link) and not link.up
        if down:
            f(host, dev, "link", "link status: DOWN", "link status: UP",
              f"check the optics (hccn_tool -i {dev} -optical -g) and cable, then "
              f"hccn_tool -i {dev} -link -s up")
        ip = self.rec("ip")
        ip = ip if isinstance(ip, NpuIp) else None
        subnet = _subnet(ip)
        gateway = self.rec("gateway")
        gw = gateway.gateway if isinstance(gateway, Gateway) else None
        health = self.rec("net_health")
        if isinstance(health, NetHealth) and not down and health.severity != "ok":
            fix = (f"hccn_tool -i {dev} -netdetect -s address {gw}" if gw
                   else f"hccn_tool -i {dev} -cfg recovery")
            f(host, dev, "net_health", f"net health status: {health.status}",
              "net health status: Success", fix, warning=health.severity == "warning")
        if down and health is not None:
            self.ev.evaluated["net_health"] -= 1
            self.ev.skipped.append(Skipped(host, dev, "net_health", "link DOWN"))
        detect = self.rec("netdetect")
        if isinstance(detect, NetDetect):
            addr = gw if gw and subnet and _inside(gw, subnet) else "<gateway>"
            if detect.address is None:
                f(host, dev, "netdetect", "netdetect addr: 0.0.0.0 (not set)",
                  "an address in the device subnet (normally the gateway)",
                  f"hccn_tool -i {dev} -netdetect -s address {addr}")
            elif subnet is not None and not _inside(detect.address, subnet):
                f(host, dev, "netdetect", f"netdetect addr: {detect.address} (outside {subnet})",
                  f"an address in {subnet}", f"hccn_tool -i {dev} -netdetect -s address {addr}")
        if isinstance(gateway, Gateway):
            nd = detect.address if isinstance(detect, NetDetect) else None
            addr = nd if nd and subnet and _inside(nd, subnet) else "<gateway>"
            if gw is None:
                if subnet is not None and self.transport == "roce":
                    self.ev.no_gateway[(host, dev)] = subnet
                f(host, dev, "gateway", "no gateway configured",
                  "a default gateway in the device subnet",
                  f"hccn_tool -i {dev} -gateway -s gateway {addr}")
            elif subnet is not None and not _inside(gw, subnet):
                f(host, dev, "gateway", f"default gateway:{gw} (outside {subnet})",
                  f"a gateway in {subnet}", f"hccn_tool -i {dev} -gateway -s gateway {addr}")
        self._addresses(ip, self.rec("vnic") if "vnic" in self.rs else None, down)
        self.rec("tls")  # judged cluster-wide in _cluster_rules; counted (or failed) here
        self._lldp(down)

    def _addresses(self, ip: NpuIp | None, vnic: object | None, down: bool) -> None:
        host, dev, f, key = self.host, self.dev, self.ev.fault, (self.host, self.dev)
        expected = self.targets.expected_ip.get(key)
        soc = self.targets.soc
        if ip is not None and ip.ipaddr is None:
            want = expected if expected and soc == "a2" else "<address>"
            f(host, dev, "ip", "no IP configured (Get ipconf failed)", "a RoCE IPv4 address",
              f"hccn_tool -i {dev} -ip -s address {want} netmask <netmask>")
        elif ip is not None and expected and soc == "a2" and ip.ipaddr != expected:
            f(host, dev, "ip", f"ipaddr:{ip.ipaddr}", f"ipaddr:{expected} (the ranktable)",
              "regenerate the ranktable (ascend-pd gen-ranktable) or restore the IP: "
              f"hccn_tool -i {dev} -ip -s address {expected} netmask {ip.netmask}")
        if isinstance(vnic, Vnic):
            if vnic.ipaddr is None or vnic.link == "DOWN":
                f(host, dev, "vnic", f"vnic link status: {vnic.link}, vnic ipaddr: {vnic.ipaddr}",
                  "vnic link status: UP with an address",
                  "vNIC addresses come from firmware: check npu-smi info and the HCCS board, "
                  f"then hccn_tool -i {dev} -cfg recovery")
            elif expected and soc == "a3" and vnic.ipaddr != expected:
                f(host, dev, "vnic", f"vnic ipaddr: {vnic.ipaddr}",
                  f"vnic ipaddr: {expected} (the ranktable)",
                  "regenerate the ranktable: ascend-pd gen-ranktable")
        if self.transport == "roce":
            addr = ip.ipaddr if ip is not None else None
            reason = ("link DOWN" if down else None) if addr else (
                "no RoCE IP" if ip is not None else "RoCE IP unknown")
        else:
            addr = vnic.ipaddr if isinstance(vnic, Vnic) else None
            reason = ("vNIC link DOWN" if isinstance(vnic, Vnic) and vnic.link == "DOWN"
                      else None) if addr else "no vNIC IP"
        if addr:
            self.ev.addresses[key] = addr
        if reason:
            self.ev.blocked[key] = f"{host} device {dev}: {reason}"

    def _lldp(self, down: bool) -> None:
        lldp = self.rec("lldp")
        if not isinstance(lldp, Lldp):
            return
        if down:
            self.ev.evaluated["lldp"] -= 1
            self.ev.skipped.append(Skipped(self.host, self.dev, "lldp", "link DOWN"))
        elif not lldp.has_neighbour:
            self.ev.fault(self.host, self.dev, "lldp", "no LLDP neighbour (empty Ifname)",
                          "the switch port the device is cabled to",
                          "check the cable and that LLDP is enabled on the switch port "
                          f"(hccn_tool -i {self.dev} -lldp -g); fine for fibre direct-connect",
                          warning=not self.require_lldp)


def evaluate_devices(
    targets: Targets, readings: dict[tuple[str, int, Query], HccnReading], *,
    transport: Transport, unreachable: dict[str, tuple[str, str]], hung: dict[Key, str],
    require_lldp: bool = False, timeout_s: float = 10.0,
) -> Evaluation:
    """Findings for every device of ``targets`` (see the module docstring).

    Args:
        targets: the resolved targets.
        readings: (host, device, query) -> reading.
        transport: what the pings will use (decides which address counts).
        unreachable: host -> (message, hint) for hosts no command reached.
        hung: (host, device) -> the first command that timed out.
        require_lldp: a missing LLDP neighbour is a fault instead of a warning.
        timeout_s: the query timeout (for the ``hang`` finding's text).
    """
    ev = Evaluation()
    by_device: dict[Key, dict[Query, HccnReading]] = {}
    for (r_host, r_dev, kind), reading in readings.items():
        by_device.setdefault((r_host, r_dev), {})[kind] = reading
    for th in targets.hosts:
        host, devs = th.name, targets.devices(th.name)
        ev.evaluated["reach"] += 1
        if host in unreachable:
            message, hint = unreachable[host]
            ev.fault(host, None, "reach", message, "the host answers commands", hint)
            ev.blocked.update({(host, d): f"{host} is unreachable" for d in devs})
            continue
        mark = len(ev.findings)
        silent = 0
        for dev in devs:
            rs = by_device.get((host, dev), {})
            if (host, dev) in hung:
                ev.findings.append(hang_finding(host, dev, hung[(host, dev)], timeout_s))
                ev.blocked[(host, dev)] = f"{host} device {dev} stopped answering"
            if not any(r.ok for r in rs.values()):
                silent += 1
                if (host, dev) not in hung and rs:
                    observed, fix = _failed(next(iter(rs.values())))
                    ev.fault(host, dev, "device", f"no hccn_tool query succeeded: {observed}",
                             "hccn_tool answers for this device", fix)
                    ev.blocked[(host, dev)] = f"{host} device {dev} does not answer"
                continue
            _Device(ev, targets, host, dev, rs, transport, require_lldp).run()
        if devs and silent == len(devs):
            # Nothing on the host answered: one finding for the host, not one per device.
            first = ev.findings[mark]
            del ev.findings[mark:]
            ev.fault(host, None, "reach", f"no device answered: {first.message}",
                     "hccn_tool answers on the host", first.fix)
    _cluster_rules(ev, targets, readings)
    return ev


def _cluster_rules(ev: Evaluation, targets: Targets,
                   readings: dict[tuple[str, int, Query], HccnReading]) -> None:
    """Rules across devices: unique IPs, one TLS value everywhere, distinct LLDP ports."""
    ips: dict[str, list[Key]] = {}
    tls: dict[Key, int] = {}
    ports: dict[tuple[str, str], list[int]] = {}
    for (host, dev, _kind), reading in readings.items():
        rec = reading.record
        if isinstance(rec, NpuIp) and rec.ipaddr:
            ips.setdefault(rec.ipaddr, []).append((host, dev))
        elif isinstance(rec, Tls):
            tls[(host, dev)] = rec.switch
        elif isinstance(rec, Lldp) and rec.port_id:
            ports.setdefault((host, rec.port_id), []).append(dev)
    for ip, owners in ips.items():
        for host, dev in sorted(owners) if len(owners) > 1 else []:
            others = ", ".join(f"{h} device {d}" for h, d in sorted(owners)
                               if (h, d) != (host, dev))
            ev.fault(host, dev, "ip", f"ipaddr:{ip} (also on {others})",
                     "a RoCE IP unique in the cluster",
                     f"hccn_tool -i {dev} -ip -s address <unique address> netmask <netmask>")
    ev.tls_values = tls
    if tls:
        ones = sum(tls.values())
        # The majority wins; on a tie, off (what the runbooks recommend).
        ref = 1 if ones > len(tls) - ones else 0
        ev.tls_reference = ref
        same = sum(1 for v in tls.values() if v == ref)
        for (host, dev), value in tls.items():
            if value != ref:
                ev.fault(host, dev, "tls", f"tls switch[{value}]",
                         f"tls switch[{ref}] like {same} of {len(tls)} devices",
                         f"hccn_tool -i {dev} -tls -s enable {ref}  (or: ascend-pd check-links "
                         "--fix tls)")
    for (host, port), devs in ports.items():
        for dev in devs if len(devs) > 1 else []:
            ev.fault(host, dev, "lldp", f"switch port {port} (also devices "
                     f"{', '.join(str(d) for d in devs if d != dev)})",
                     "a distinct switch port per device",
                     "check the cabling: two devices report the same switch port", warning=True)


def ping_skip(pair: PingPair, ev: Evaluation) -> Skipped | None:
    """Skipped when either end is already reported (no IP, link DOWN, unreachable, hung)."""
    src, dst = (pair.src.host, pair.src.device), (pair.dst.host, pair.dst.device)
    reason = ev.blocked.get(src) or ev.blocked.get(dst)
    if reason is None and dst not in ev.addresses:
        reason = f"{dst[0]} device {dst[1]}: address unknown"
    subnet = ev.no_gateway.get(src)
    if reason is None and subnet is not None and not _inside(ev.addresses[dst], subnet):
        reason = f"{src[0]} device {src[1]}: no gateway to leave {subnet}"
    if reason is None:
        return None
    return Skipped(src[0], src[1], "ping", reason, Peer(dst[0], dst[1], ev.addresses.get(dst)))


def evaluate_ping(pair: PingPair, address: str, reading: HccnReading,
                  transport: Transport) -> Finding | Skipped | None:
    """None when the pair is healthy; a Finding when packets were lost or the ping failed."""
    host, dev = pair.src.host, pair.src.device
    peer = Peer(pair.dst.host, pair.dst.device, address)
    kind = "ping" if transport == "roce" else "hccs_ping"
    ends = ("both ends (-link -g, -net_health -g) and the path (-gateway -g, switch ports)"
            if transport == "roce" else "both vNICs (-vnic -g) and the HCCS links of the pod")
    fix = f"re-test: hccn_tool -i {dev} -{kind} -g address {address} (on {host}); then check {ends}"
    expected = "all packets received, 0.00% loss"
    if isinstance(reading.error, CommandTimeoutError):
        reason = ("the device stopped answering" if isinstance(reading.error, DeviceHungError)
                  else "the ping timed out (device reported as hung)")
        return Skipped(host, dev, "ping", reason, peer)
    record = reading.record
    if isinstance(record, Ping):
        if record.healthy:
            return None
        bad_l1 = [p.l1_check for p in record.packets if p.l1_check]
        observed = (f"{record.received}/{record.transmitted} received, "
                    f"{record.loss_pct:.2f}% loss" + (f", L1 plane check {bad_l1[0]:#x}"
                                                      if bad_l1 else ""))
        return device_finding(host, dev, "ping", observed, expected, fix, peer=peer)
    observed, hint = _failed(reading)
    return device_finding(host, dev, "ping", f"`-{kind} -g` failed: {observed}", expected,
                          f"{hint}; {fix}", peer=peer)
