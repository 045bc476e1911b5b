"""Mutable simulator state shared by separate processes: ``<cluster file>.state/<host>.*``.

* ``<host>.json``: per-device overrides written by set commands (``tls_switch``, ``ip``, ...)
  and fault counters (busy calls used). Read-modify-write happens under ``<host>.json.lock``.
* ``<host>.hccn.lock``: hccn_tool's own lock. Set commands take it with a non-blocking
  ``flock`` for as long as they run; a second caller meanwhile gets "busy" (exit 11).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ascend_pd.fsutil import atomic_write_text
from ascend_pd.sim.cluster import SimCluster, SimHost

State = dict[str, Any]


def state_dir(cluster_path: str | Path) -> Path:
    """The state directory next to the cluster file."""
    path = Path(cluster_path)
    return path.with_name(path.name + ".state")


class HostState:
    """The persistent state of one simulated host."""

    def __init__(self, cluster_path: str | Path, host: str) -> None:
        self.dir = state_dir(cluster_path)
        self.json_path = self.dir / f"{host}.json"
        self.lock_path = self.dir / f"{host}.json.lock"
        self.tool_lock_path = self.dir / f"{host}.hccn.lock"

    def read(self) -> State:
        """The current state ({} when nothing was changed yet)."""
        try:
            data: State = json.loads(self.json_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data

    def update(self, change: Callable[[State], Any]) -> Any:
        """Run ``change(state)`` under the state lock, persist the state, return its result."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                state = self.read()
                result = change(state)
                atomic_write_text(self.json_path, json.dumps(state, indent=1, sort_keys=True))
                return result
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def tool_lock(self) -> Iterator[bool]:
        """hccn_tool's lock: yields True when taken, False when another caller holds it.

        The holder's pid is written into the lock file so tests can see it is held.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.tool_lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            try:
                yield True
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def clear_device(self, phy_id: int, fields: list[str] | None = None) -> None:
        """Drop set-command overrides of a device (all, or only ``fields``)."""

        def change(state: State) -> None:
            devices = state.setdefault("devices", {})
            entry = devices.get(str(phy_id), {})
            for key in list(entry) if fields is None else fields:
                entry.pop(key, None)
            devices[str(phy_id)] = entry
            state.setdefault("busy_used", {}).pop(str(phy_id), None)

        self.update(change)


def apply_state(host: SimHost, state: State) -> SimHost:
    """``host`` with the device overrides of ``state`` applied (the input is not changed)."""
    overrides: dict[str, dict[str, Any]] = state.get("devices", {})
    if not overrides:
        return host
    devices = [
        dataclasses.replace(dev, **overrides.get(str(dev.phy_id), {})) for dev in host.devices
    ]
    return dataclasses.replace(host, devices=devices)


def effective_host(cluster: SimCluster, cluster_path: str | Path, name: str) -> SimHost | None:
    """Host ``name`` of ``cluster`` as it is now (file + persisted state)."""
    host = cluster.host(name)
    if host is None:
        return None
    return apply_state(host, HostState(cluster_path, name).read())


def reset_state(cluster_path: str | Path) -> None:
    """Forget every persisted change (e.g. after regenerating the cluster file)."""
    directory = state_dir(cluster_path)
    if directory.is_dir():
        for child in directory.iterdir():
            if child.suffix == ".json":
                child.unlink()
