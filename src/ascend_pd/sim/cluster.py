"""The sim cluster file: every simulated host's SoC, devices, addressing, state and faults.

A YAML file of :class:`SimCluster`. It is the *initial* state; what set commands change
(``-tls -s``, ``-ip -s``, ...) and fault counters live in ``<file>.state/`` (see
``ascend_pd.sim.state``) so that separate processes agree. The records are plain validated
dataclasses (``sim.record``), not pydantic models: every stand-in call loads this file.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import yaml

from ascend_pd.errors import SpecError
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.npusmi.soc import sdid_encode
from ascend_pd.sim.record import Invalid, Record, bounded

Soc = Literal["a2", "a3"]
LinkState = Literal["UP", "DOWN"]
NetHealthState = Literal[
    "Success", "Socket fail", "Receive timeout", "Unreachable", "Time exceeded", "Fault",
    "Init", "Thread error", "Detect ip set", "Unknown",
]
#: hccn_tool attrs a hang fault can name ("*" = every command of the device).
HANG_KINDS: Final[tuple[str, ...]] = (
    "*", "ip", "vnic", "link", "net_health", "netdetect", "gateway", "tls", "lldp", "ping",
    "hccs_ping",
)
# PCIe bus ids in the order the [V] captures list them.
_A2_BUS: Final[tuple[str, ...]] = ("C1", "C2", "81", "82", "01", "02", "41", "42")
_A3_BUS: Final[tuple[str, ...]] = ("9D", "9F", "99", "9B", "95", "97", "91", "93",
                                   "8D", "8F", "89", "8B", "85", "87", "81", "83")


@dataclass(kw_only=True)
class Latency(Record):
    """Added wall time per command kind, in seconds."""

    query_s: float = bounded(0.0, ge=0)
    ping_s: float = bounded(0.0, ge=0)
    #: how long set commands hold hccn_tool's lock (a concurrent caller sees "busy")
    set_s: float = bounded(0.0, ge=0)


@dataclass(kw_only=True)
class PingLoss(Record):
    """Packets lost when this device pings ``address`` (RoCE or HCCS)."""

    address: str
    lost: int = bounded(3, ge=1)


@dataclass(kw_only=True)
class DeviceFaults(Record):
    """Injected misbehaviour of one device."""

    #: the next N hccn_tool calls on this device answer "hccn_tool is busy"
    busy_calls: int = bounded(0, ge=0)
    #: commands that never answer (HANG_KINDS); the caller's timeout must fire
    hang: list[str] = bounded(factory=list)
    ping_loss: list[PingLoss] = bounded(factory=list)
    #: field values replaced by `ascend-pd sim fault`, restored by `--clear`
    saved: dict[str, str | int | bool | None] = bounded(factory=dict)


@dataclass(kw_only=True)
class SimDevice(Record):
    """One NPU chip: ids, RoCE/vNIC addressing, TLS, link, health, LLDP and faults."""

    phy_id: int = bounded(ge=0, le=99)
    card: int = bounded(ge=0)
    chip: int = bounded(0, ge=0, le=1)
    ip: str | None = None
    netmask: str = "255.255.255.0"
    gateway: str | None = None
    netdetect: str | None = None
    vnic_ip: str | None = None
    vnic_netmask: str = "255.255.255.0"
    vnic_link: LinkState = "UP"
    tls_switch: int = bounded(0, ge=0, le=1)
    tls_preconfigured: int = bounded(1, ge=0, le=1)
    has_certificate: bool = True
    link: LinkState = "UP"
    net_health: NetHealthState = "Success"
    lldp_port: str | None = None
    lldp_system_name: str | None = None
    #: SDID override; by default derived from the host's server_index, card and die
    sdid: int | None = None
    bus_id: str = "0000:00:00.0"
    health: str = "OK"
    #: npu-smi info metrics (die 1 of an A3 card prints "-" for power whatever this says)
    power_w: float = 95.0
    temp_c: int = 38
    hbm_used_mb: int = 3400
    hbm_total_mb: int = 65536
    latency: Latency = bounded(factory=Latency)
    faults: DeviceFaults = bounded(factory=DeviceFaults)

    def subnet(self) -> ipaddress.IPv4Network | None:
        if self.ip is None:
            return None
        return ipaddress.IPv4Network(f"{self.ip}/{self.netmask}", strict=False)


@dataclass(kw_only=True)
class Firmware(Record):
    """Older-firmware strings, so parsers can be tested against both spellings."""

    socket_failed: bool = False
    tls_without_preconfigured: bool = False
    netdetect_address_label: bool = False


@dataclass(kw_only=True)
class SimGpus(Record):
    """The NVIDIA GPUs of a simulated ``platform: cuda`` host, as ``nvidia-smi`` shows them.

    Faults: ``missing`` GPU slots NVML no longer enumerates (fallen off the bus, Xid 79):
    nvidia-smi lists the others, numbered from 0 again. ``nvml_library_version``: the
    user-space driver was upgraded but the old kernel module is still loaded, so every
    nvidia-smi call fails with ``Driver/library version mismatch`` (exit 18). A wrong
    driver is just ``driver_version`` / ``cuda_version`` set to an old branch.
    """

    model: str = "NVIDIA A100-SXM4-80GB"
    count: int = bounded(8, ge=1, le=16)
    memory_mib: int = bounded(81920, ge=1)
    driver_version: str = "580.126.09"
    #: the newest CUDA the driver supports (nvidia-smi's "CUDA Version")
    cuda_version: str = "13.0"
    power_cap_w: int = bounded(400, ge=1)
    missing: list[int] = bounded(factory=list)
    nvml_library_version: str | None = None
    #: values replaced by `ascend-pd sim fault --kind gpu-driver`, restored by `--clear`
    saved: dict[str, str] = bounded(factory=dict)

    def check(self) -> str | None:
        bad = [i for i in self.missing if not 0 <= i < self.count]
        return f"gpus.missing {bad} outside 0..{self.count - 1}" if bad else None


@dataclass(kw_only=True)
class SimHost(Record):
    """One simulated server: NPUs (``devices``) or, for ``platform: cuda``, ``gpus``."""

    name: str = bounded(min_length=1)
    address: str
    soc: Soc = "a2"
    npu_smi_version: str = "24.1.0.3"
    #: npu-smi Name column on A2 (910B1..910B4); A3 always prints Ascend910
    chip_name: str = "910B3"
    #: A3 board NPU Name (SoC Ascend910_9392)
    npu_name: str = "9392"
    firmware_version: str = "7.5.0.1.129"
    server_index: int = bounded(0, ge=0, le=47)
    super_pod_id: int = bounded(0, ge=0)
    super_pod_size: int = 384
    #: -hccs_ping works only on SuperPoD / A+X / A+K boards; default: A3 yes, A2 no
    hccs_ping_supported: bool | None = None
    #: False: set commands fail with "permission denied" (exit 12)
    root: bool = True
    firmware: Firmware = bounded(factory=Firmware)
    latency: Latency = bounded(factory=Latency)
    devices: list[SimDevice] = bounded(factory=list)
    gpus: SimGpus | None = None

    def check(self) -> str | None:
        ids = [d.phy_id for d in self.devices]
        return f"host {self.name}: device phy ids repeat" if len(set(ids)) != len(ids) else None

    @property
    def hccs_supported(self) -> bool:
        return self.soc == "a3" if self.hccs_ping_supported is None else self.hccs_ping_supported

    def device(self, phy_id: int) -> SimDevice | None:
        return next((d for d in self.devices if d.phy_id == phy_id), None)

    def sdid(self, dev: SimDevice) -> int:
        if dev.sdid is not None:
            return dev.sdid
        return sdid_encode(self.server_index, min(dev.card, 7), dev.chip)


@dataclass(kw_only=True)
class SimCluster(Record):
    """The whole simulated cluster."""

    version: Literal[1] = 1
    hosts: list[SimHost] = bounded(min_length=1)

    def check(self) -> str | None:
        names = [h.name for h in self.hosts]
        return "host names repeat" if len(set(names)) != len(names) else None

    def host(self, name: str) -> SimHost | None:
        return next((h for h in self.hosts if h.name == name), None)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: (path, mtime_ns, size) -> parsed cluster. Every in-process SimNode of a large simulated
#: cluster reads the same file; parse it once per version, not once per host.
_CACHE: dict[tuple[str, int, int], SimCluster] = {}


def load_cluster(path: str | Path) -> SimCluster:
    """Read and validate a sim cluster file (cached until the file changes).

    Raises:
        SpecError: unreadable, not YAML, or not a valid cluster (names the problem).
    """
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    if key is not None and key in _CACHE:
        return _CACHE[key]
    cluster = _load_cluster(path)
    if key is not None:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = cluster
    return cluster


def _load_cluster(path: Path) -> SimCluster:
    try:
        # libyaml's loader when PyYAML has it: every simulated tool call parses this file.
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506
    except OSError as exc:
        raise SpecError(f"cannot read sim cluster file {path}: {exc.strerror}",
                        hint="create one with `ascend-pd sim init-cluster`") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return SimCluster.from_data(data)
    except Invalid as exc:
        raise SpecError(f"{path} is not a valid sim cluster file", problems=exc.problems,
                        hint="regenerate it with `ascend-pd sim init-cluster`") from exc


def dump_cluster(cluster: SimCluster) -> str:
    """The YAML text of ``cluster`` (defaults left out to keep files readable)."""
    data = cluster.to_data(exclude_defaults=True)
    data.pop("version", None)
    return yaml.safe_dump({"version": cluster.version, **data}, sort_keys=False)


def save_cluster(cluster: SimCluster, path: str | Path) -> Path:
    """Write ``cluster`` atomically to ``path`` (checked first: records are mutable)."""
    try:
        SimCluster.from_data(cluster.to_data())
    except Invalid as exc:
        raise SpecError("refusing to write an invalid sim cluster file",
                        problems=exc.problems) from exc
    return atomic_write_text(path, dump_cluster(cluster))


def generate_cluster(
    hosts: list[tuple[str, str]],
    soc: Soc = "a2",
    devices: int | None = None,
    *,
    roce_prefix: str = "29.10",
    first_server_index: int = 2,
    switch_name: str = "leaf-sw-01",
) -> SimCluster:
    """A healthy cluster with realistic addressing.

    Args:
        hosts: ``(name, address)`` per host, in order.
        soc: ``a2`` (910B, 1 chip per card) or ``a3`` (910_93, 2 dies per card).
        devices: devices per host (default 8 on A2, 16 on A3).
        roce_prefix: first two octets of RoCE IPs: host i, device d gets
            ``<prefix>.<i+1>.<d+1>/24``; gateway and netdetect are ``.254`` of that subnet.
        first_server_index: A3 Server Index of the first host (one per host after it);
            the vNIC of device d is ``192.168.<server_index>.<199-d>`` (the default 2 keeps
            clear of 192.168.1.0/24, the vNIC host side, and matches the observed
            single-node sample 192.168.2.199).
        switch_name: LLDP System Name; ports are ``200GE1/<i+1>/<d+1>``.
    """
    per_card = 2 if soc == "a3" else 1
    count = devices if devices is not None else 8 * per_card
    if not 1 <= count <= (16 if soc == "a3" else 8):
        raise ValueError(f"{soc} hosts have 1..{16 if soc == 'a3' else 8} devices, not {count}")
    if soc == "a3" and first_server_index + len(hosts) - 1 > 47:
        raise ValueError("A3 server indexes run 0..47: too many hosts for first_server_index")
    buses = _A3_BUS if soc == "a3" else _A2_BUS
    out: list[SimHost] = []
    for i, (name, address) in enumerate(hosts):
        subnet = f"{roce_prefix}.{i + 1}"
        server_index = first_server_index + i if soc == "a3" else 0
        devs = [
            SimDevice(
                phy_id=d, card=d // per_card, chip=d % per_card,
                ip=f"{subnet}.{d + 1}", gateway=f"{subnet}.254", netdetect=f"{subnet}.254",
                vnic_ip=f"192.168.{server_index}.{199 - d}" if soc == "a3" else None,
                lldp_port=f"200GE1/{i + 1}/{d + 1}", lldp_system_name=switch_name,
                bus_id=f"0000:{buses[d]}:00.0",
                hbm_used_mb=3400 - 200 * (d % per_card) + d,
            )
            for d in range(count)
        ]
        out.append(SimHost(
            name=name, address=address, soc=soc, devices=devs, server_index=server_index,
            npu_smi_version="24.1.rc3.7" if soc == "a3" else "24.1.0.3",
        ))
    return SimCluster(hosts=out)
