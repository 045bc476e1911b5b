"""One simulated host: the impure shell around the pure cores.

``SimNode`` reads the cluster file (re-reading it when it changes), applies persisted
state, consumes "busy for N calls" faults, holds hccn_tool's ``flock`` while set commands
run and persists what they change. Used in-process by ``make_sim_runner`` and by the
stand-in executables, so both answer identically.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Final

from ascend_pd.errors import UsageError
from ascend_pd.sim.cluster import SimCluster, SimHost, load_cluster
from ascend_pd.sim.hccn_core import HANG_S, SimReply, busy_reply, simulate_hccn
from ascend_pd.sim.npusmi_core import simulate_npu_smi
from ascend_pd.sim.nvsmi_core import simulate_nvidia_smi
from ascend_pd.sim.ping_sim import Peer
from ascend_pd.sim.state import HostState, State, apply_state

#: Set commands sleep their latency inside the lock; a hang is left to the caller's timeout.
_MAX_IN_LOCK_S: Final[float] = HANG_S / 2


class SimNode:
    """The simulated host ``host_name`` of the cluster file ``cluster_path``.

    Raises:
        SpecError: the cluster file is missing or invalid.
        UsageError: the host is not in the cluster file.
    """

    def __init__(self, cluster_path: str | Path, host_name: str) -> None:
        self.path = Path(cluster_path)
        self.name = host_name
        self.state = HostState(self.path, host_name)
        self._index: dict[str, tuple[str, int]] = {}
        if self.cluster().host(host_name) is None:
            names = ", ".join(h.name for h in self.cluster().hosts)
            raise UsageError(f"host '{host_name}' is not in sim cluster {self.path}",
                             hint=f"use one of: {names}")

    def cluster(self) -> SimCluster:
        """The cluster file, re-read when its size or mtime changed (faults edit it)."""
        cluster, self._index = _load(self.path)
        return cluster

    def host(self) -> SimHost:
        """This host as it is now (file + persisted state)."""
        host = self.cluster().host(self.name)
        assert host is not None
        return apply_state(host, self.state.read())

    def resolve(self, address: str) -> Peer | None:
        """The device owning a RoCE/vNIC address or ``sdid:<n>``, with its current state."""
        cluster = self.cluster()
        hit = self._index.get(address)
        if hit is None:
            return None
        host_name, phy_id = hit
        if host_name == self.name:
            host = self.host()
        else:
            base = cluster.host(host_name)
            assert base is not None
            host = apply_state(base, HostState(self.path, host_name).read())
        device = host.device(phy_id)
        return None if device is None else Peer(host, device)

    def hccn(self, argv: list[str] | tuple[str, ...]) -> SimReply:
        """Answer one hccn_tool call, with side effects (busy faults, lock, persistence)."""
        host = self.host()
        dev = _device_arg(argv, host)
        if dev is not None and host.device(dev) is not None:
            budget = host.device(dev).faults.busy_calls  # type: ignore[union-attr]
            if budget and self._consume_busy(dev, budget):
                return busy_reply()
        reply = simulate_hccn(argv, host, self.resolve)
        if not (reply.takes_lock and reply.exit_code == 0) or reply.delay_s >= _MAX_IN_LOCK_S:
            return reply
        with self.state.tool_lock() as taken:
            if not taken:
                return busy_reply()
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.updates and reply.device is not None:
                self._persist(reply.device, reply.updates)
        return SimReply(reply.exit_code, reply.stdout, reply.stderr, 0.0, reply.device)

    def npu_smi(self, argv: list[str] | tuple[str, ...]) -> SimReply:
        """Answer one npu-smi call."""
        return simulate_npu_smi(argv, self.host())

    def nvidia_smi(self, argv: list[str] | tuple[str, ...]) -> SimReply:
        """Answer one nvidia-smi call (platform cuda hosts)."""
        return simulate_nvidia_smi(argv, self.host())

    def _consume_busy(self, dev: int, budget: int) -> bool:
        def change(state: State) -> bool:
            used = state.setdefault("busy_used", {})
            if used.get(str(dev), 0) >= budget:
                return False
            used[str(dev)] = used.get(str(dev), 0) + 1
            return True

        return bool(self.state.update(change))

    def _persist(self, dev: int, updates: dict[str, object]) -> None:
        def change(state: State) -> None:
            state.setdefault("devices", {}).setdefault(str(dev), {}).update(updates)

        self.state.update(change)


_CACHE: dict[Path, tuple[tuple[int, int, int], SimCluster, dict[str, tuple[str, int]]]] = {}
_CACHE_LOCK = threading.Lock()


def _load(path: Path) -> tuple[SimCluster, dict[str, tuple[str, int]]]:
    # One parse per file version for the whole process: a fan-out over hundreds of
    # simulated hosts must not re-read the YAML once per host.
    key = path.resolve()
    try:
        stat = key.stat()
    except FileNotFoundError:
        return load_cluster(path), {}  # raises SpecError naming the file
    # The inode changes on every atomic rewrite, even within one mtime tick.
    stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is None or hit[0] != stamp:
            cluster = load_cluster(path)
            hit = _CACHE[key] = (stamp, cluster, _address_index(cluster))
        return hit[1], hit[2]


def _device_arg(argv: list[str] | tuple[str, ...], host: SimHost) -> int | None:
    if len(argv) > 2 and argv[1] == "-i" and argv[2].isdigit() and len(argv[2]) <= 2:
        return int(argv[2])
    return None


def _address_index(cluster: SimCluster) -> dict[str, tuple[str, int]]:
    index: dict[str, tuple[str, int]] = {}
    for host in cluster.hosts:
        for dev in host.devices:
            sdid = f"sdid:{host.sdid(dev)}" if host.soc == "a3" else None
            for key in (dev.ip, dev.vnic_ip, sdid):
                if key is not None:
                    index.setdefault(key, (host.name, dev.phy_id))
    return index
