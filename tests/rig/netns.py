"""A multi-host test rig: Linux network namespaces on a bridge, a real sshd in each.

Every rig host is a network namespace with a veth pair into a bridge in the root
namespace, an address in ``198.18.<k>.0/24`` (RFC 2544 benchmark space, never routed
outside this machine) and an OpenSSH ``sshd`` started inside the namespace with its own
host key and config. The test process (root namespace) reaches every host, and the hosts
reach each other, over the bridge.

Only the network is isolated: all hosts share this machine's filesystem and users. Host
identity therefore comes from sshd's ``SetEnv`` (``ASCEND_PD_SIM_HOST``,
``ASCEND_PD_SIM_CLUSTER``, ``PATH`` with the rig's tools dir first, and a per-host
``HOME`` so the machine's own dotfiles do not leak into remote commands).

Names carry the creating pid and a per-process sequence number (namespaces
``apdrig-<pid>-<seq>-<i>``, bridge ``apdbr<pid>.<seq>``, veths ``av|ap<pid>.<seq>.<i>``) so
concurrent runs and several rigs in one run never collide; leftovers of killed runs are
removed by the next run (:func:`cleanup_stale`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
PREFIX = "apdrig-"
BRIDGE_PREFIX = "apdbr"
VETH_PREFIXES = ("av", "ap")  # root side / namespace side (renamed eth0 once moved)
#: the rig's subnets live in 198.18.0.0/15; the third octet is picked per run
NET_PREFIX = "198.18."
HOST_BASE = 11  # host i gets 198.18.<k>.(11 + i); .1 is the bridge
UNUSED_HOST = 250  # in the subnet, never assigned: connects to it time out


class RigUnavailable(RuntimeError):
    """This machine cannot run the rig; the message says exactly why."""


def _run(*argv: str, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def unavailable_reason() -> str | None:
    """Why the rig cannot run here (None when it can), checked before touching anything."""
    uid = os.geteuid()
    if uid != 0:
        return f"needs root to create network namespaces (running as uid {uid})"
    if shutil.which("ip") is None:
        return "needs `ip` from iproute2 to create network namespaces (apt-get install iproute2)"
    if not os.access(SSHD, os.X_OK):
        return (f"needs OpenSSH's {SSHD} (apt-get install openssh-server; "
                "scripts/bootstrap installs it when run as root)")
    if shutil.which("ssh-keygen") is None:
        return "needs ssh-keygen to create host and client keys (apt-get install openssh-client)"
    return None


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _kill_netns_processes(ns: str) -> None:
    pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def cleanup_stale() -> list[str]:
    """Remove namespaces and bridges left by rig runs whose process is gone."""
    removed = []
    for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        if not ns.startswith(PREFIX):
            continue
        pid = ns[len(PREFIX):].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            _kill_netns_processes(ns)
            _run("ip", "netns", "del", ns, check=False)
            removed.append(ns)
    # Bridges, and veths of a run killed before it moved them into a namespace.
    for line in _run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        for prefix in (BRIDGE_PREFIX, *VETH_PREFIXES):
            pid = name[len(prefix):].split(".")[0]
            if (name.startswith(prefix) and "." in name and pid.isdigit()
                    and not _pid_alive(int(pid))):
                _run("ip", "link", "del", name, check=False)
                removed.append(name)
                break
    return removed


def _pick_subnet() -> int:
    used = _run("ip", "-o", "-4", "addr", "show", check=False).stdout
    start = os.getpid() % 200 + 1
    for k in [*range(start, 255), *range(1, start)]:
        if f" {NET_PREFIX}{k}." not in used:
            return k
    raise RigUnavailable("no free 198.18.<k>.0/24 subnet for the rig")


def _keygen(path: Path, comment: str) -> None:
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))


@dataclass
class RigHost:
    """One simulated host: a namespace with an address and an sshd."""

    name: str
    address: str
    port: int
    netns: str
    dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def log_path(self) -> Path:
        return self.dir / "sshd.log"

    def known_hosts_line(self) -> str:
        keytype, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{name} {keytype} {blob}\n"


class Rig:
    """N hosts reachable over SSH from the test process. Use as a context manager.

    Args:
        base_dir: an empty directory for keys, configs, logs and the tools dir.
        n_hosts: how many hosts (h1, h2, ...). Even-numbered hosts listen on port 2222 so
            that both known_hosts spellings (``addr`` and ``[addr]:port``) are exercised.
        sim_cluster: the value of ``ASCEND_PD_SIM_CLUSTER`` on every host (need not exist).
    """

    _instances = 0  # per-process sequence number, part of every interface name

    def __init__(self, base_dir: Path, n_hosts: int = 3, *, sim_cluster: Path | None = None):
        if not 1 <= n_hosts <= 99:
            raise ValueError("a rig has 1..99 hosts")
        Rig._instances += 1
        self.base_dir = base_dir
        self.pid = os.getpid()
        self.seq = Rig._instances % 100
        self.tag = f"{self.pid}.{self.seq}"  # fits IFNAMSIZ: "apdbr" + 7-digit pid + ".NN"
        self.bridge = f"{BRIDGE_PREFIX}{self.tag}"
        self.tools_dir = base_dir / "tools"
        self.key_path = base_dir / "client_ed25519"
        self.wrong_key_path = base_dir / "wrong_ed25519"
        self.known_hosts = base_dir / "known_hosts"
        self.authorized_keys = base_dir / "authorized_keys"
        self.sim_cluster = sim_cluster or base_dir / "sim-cluster.yaml"
        self.subnet = 0
        self.n_hosts = n_hosts
        self.hosts: list[RigHost] = []
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Rig:
        reason = unavailable_reason()
        if reason:
            raise RigUnavailable(reason)
        cleanup_stale()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        self.tools_dir.mkdir(parents=True, exist_ok=True)
        self._write_default_tools()
        _keygen(self.key_path, "ascend-pd-rig-client")
        _keygen(self.wrong_key_path, "ascend-pd-rig-not-authorized")
        self.authorized_keys.write_text(self.key_path.with_name(self.key_path.name + ".pub")
                                        .read_text())
        self.subnet = _pick_subnet()
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
        except RuntimeError as exc:
            raise RigUnavailable(f"cannot create a bridge here: {exc}") from exc
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i in range(1, self.n_hosts + 1):
            self._add_host(i)
        for host in self.hosts:
            self.start_sshd(host.name)
        self.write_known_hosts()
        return self

    @property
    def gateway(self) -> str:
        return f"{NET_PREFIX}{self.subnet}.1"

    @property
    def unused_address(self) -> str:
        """An address inside the rig subnet that no host answers (connects time out)."""
        return f"{NET_PREFIX}{self.subnet}.{UNUSED_HOST}"

    def _add_host(self, i: int) -> None:
        name, ns = f"h{i}", f"{PREFIX}{self.pid}-{self.seq}-{i}"
        address = f"{NET_PREFIX}{self.subnet}.{HOST_BASE + i - 1}"
        outer, inner = (f"{p}{self.tag}.{i}" for p in VETH_PREFIXES)
        try:
            _run("ip", "netns", "add", ns)
        except RuntimeError as exc:
            raise RigUnavailable(f"cannot create network namespaces here: {exc}") from exc
        host_dir = self.base_dir / "hosts" / name
        (host_dir / "home").mkdir(parents=True, exist_ok=True)
        env = {
            "ASCEND_PD_SIM_HOST": name,
            "ASCEND_PD_SIM_CLUSTER": str(self.sim_cluster),
            # tools first, then this interpreter's bin (ascend-pd-sim-* entry points)
            "PATH": f"{self.tools_dir}:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(host_dir / "home"),
        }
        host = RigHost(name, address, 2222 if i % 2 == 0 else 22, ns, host_dir, env)
        self.hosts.append(host)
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", outer, "master", self.bridge)
        _run("ip", "link", "set", outer, "up")
        _run("ip", "link", "set", inner, "netns", ns)
        nsx = ("ip", "netns", "exec", ns)
        _run(*nsx, "ip", "link", "set", inner, "name", "eth0")
        _run(*nsx, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        _run(*nsx, "ip", "link", "set", "eth0", "up")
        _run(*nsx, "ip", "link", "set", "lo", "up")
        _keygen(host.host_key, f"ascend-pd-rig-{name}")

    def close(self) -> None:
        """Kill every sshd, delete the namespaces and the bridge. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for host in self.hosts:
            self.stop_sshd(host.name)
            _kill_netns_processes(host.netns)  # commands orphaned by timed-out channels
            _run("ip", "netns", "del", host.netns, check=False)
        _run("ip", "link", "del", self.bridge, check=False)

    def __enter__(self) -> Rig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hosts and sshd -------------------------------------------------------------------

    def host(self, name: str) -> RigHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no rig host {name!r} (have {[h.name for h in self.hosts]})")

    def _write_config(self, host: RigHost) -> Path:
        setenv = " ".join(f'"{k}={v}"' for k, v in host.env.items())
        config = host.dir / "sshd_config"
        config.write_text(
            f"ListenAddress {host.address}\n"
            f"Port {host.port}\n"
            f"HostKey {host.host_key}\n"
            "PidFile none\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PrintMotd no\n"
            "LogLevel VERBOSE\n"
            f"SetEnv {setenv}\n"
        )
        return config

    def start_sshd(self, name: str, *, timeout: float = 10.0) -> None:
        """Start the host's sshd inside its namespace and wait until it accepts TCP."""
        host = self.host(name)
        if host.process is not None and host.process.poll() is None:
            return
        config = self._write_config(host)
        with host.log_path.open("ab") as log:
            host.process = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.process.poll() is not None:
                raise RuntimeError(f"sshd on {name} exited {host.process.returncode}: "
                                   f"{host.log_path.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                (host.address, host.port), timeout=0.5
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd on {name} did not listen on {host.address}:{host.port} "
                           f"within {timeout:g} s")

    def stop_sshd(self, name: str) -> None:
        """Stop the host's sshd and every session it serves, like a host whose sshd died.

        New connections are refused (the address stays up); open ones are cut.
        """
        host = self.host(name)
        if host.process is None:
            return
        _kill_netns_processes(host.netns)  # per-connection sshd children outlive the master
        if host.process.poll() is None:
            host.process.terminate()
            try:
                host.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.process.wait(timeout=5)
        host.process = None

    @contextlib.contextmanager
    def sshd_stopped(self, name: str) -> Iterator[RigHost]:
        """Within the block the host's sshd is down; it is started again afterwards."""
        self.stop_sshd(name)
        try:
            yield self.host(name)
        finally:
            self.start_sshd(name)

    def rotate_host_key(self, name: str) -> Path:
        """Give the host a new host key and restart its sshd.

        The rig's ``known_hosts`` is updated to the new key, so other tests keep working;
        the returned file is a copy taken before, still holding the OLD key (what a client
        that saw the host earlier has).
        """
        stale = self.base_dir / f"known_hosts.before-rotate-{name}-{time.monotonic_ns()}"
        shutil.copyfile(self.known_hosts, stale)
        self.stop_sshd(name)
        _keygen(self.host(name).host_key, f"ascend-pd-rig-{name}-rotated")
        self.start_sshd(name)
        self.write_known_hosts()
        return stale

    def write_known_hosts(self, path: Path | None = None) -> Path:
        """Write a known_hosts file with every host's current key (default: the rig's)."""
        dest = path or self.known_hosts
        dest.write_text("".join(h.known_hosts_line() for h in self.hosts))
        return dest

    def sshd_log(self, name: str) -> str:
        return self.host(name).log_path.read_text(errors="replace")

    # -- tools and specs ------------------------------------------------------------------

    def install_tool(self, name: str, script: str) -> Path:
        """Put an executable into the tools dir that is on every host's PATH."""
        path = self.tools_dir / name
        path.write_text(script)
        path.chmod(0o755)
        return path

    def _write_default_tools(self) -> None:
        # Stand-in until the simulated hccn_tool is installed here: proves which host ran it.
        self.install_tool("rig-whoami", '#!/bin/sh\necho "host=${ASCEND_PD_SIM_HOST:-unset}"\n')

    def ssh_spec(self, **overrides: object) -> dict[str, object]:
        """The spec's ``ssh:`` section for reaching the rig."""
        return {
            "user": "root",
            "key": str(self.key_path),
            "known_hosts": str(self.known_hosts),
            "host_key_policy": "strict",
            "connect_timeout_s": 3.0,
            "use_agent": False,
            **overrides,
        }

    def spec_hosts(self, devices: list[int] | None = None) -> list[dict[str, object]]:
        """The spec's ``hosts:`` list (name, address, ssh.port, nic, devices)."""
        return [
            {
                "name": h.name,
                "address": h.address,
                "nic": "eth0",
                "ssh": {"port": h.port},
                "devices": list(devices if devices is not None else range(8)),
            }
            for h in self.hosts
        ]
