"""Pick the runner for a spec host: local, SSH or in-process simulation."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ascend_pd.errors import UsageError
from ascend_pd.runners.base import CommandRunner
from ascend_pd.spec.models import (
    DEFAULT_HCCN_TOOL,
    DEFAULT_NPU_SMI,
    ClusterSpec,
    HostSpec,
    SSHSpec,
)

BACKENDS: Final[tuple[str, ...]] = ("auto", "local", "ssh", "sim")


@functools.lru_cache(maxsize=256)
def is_local_address(address: str) -> bool:
    """True when ``address`` belongs to this machine (binding to it succeeds)."""
    if address in ("localhost", "::1") or address.startswith("127."):
        return True
    try:
        infos = socket.getaddrinfo(address, None)
    except OSError:
        return False
    for family, _, _, _, sockaddr in infos:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.bind((sockaddr[0], 0))
            return True
        except OSError:
            continue
    return False


def resolve_backend(cli_value: str | None, spec: ClusterSpec | None) -> tuple[str, str]:
    """Return ``(backend, source)``: CLI flag > ASCEND_PD_BACKEND > spec (sim: section) > auto."""
    if cli_value:
        name, source = cli_value, "--backend"
    elif os.environ.get("ASCEND_PD_BACKEND"):
        name, source = os.environ["ASCEND_PD_BACKEND"], "ASCEND_PD_BACKEND"
    elif spec is not None and spec.backend != "auto":
        name, source = spec.backend, "spec backend:"
    else:
        name, source = "auto", "default"
    if name not in BACKENDS:
        raise UsageError(
            f"unknown backend '{name}' (from {source})",
            hint=f"use one of: {', '.join(BACKENDS)}",
        )
    return name, source


def tool_paths(host: HostSpec) -> tuple[str, str]:
    """hccn_tool and npu-smi paths for ``host``: spec > HCCN_TOOL_PATH env > defaults."""
    hccn = host.hccn_tool or os.environ.get("HCCN_TOOL_PATH") or DEFAULT_HCCN_TOOL
    npu_smi = host.npu_smi or DEFAULT_NPU_SMI
    return hccn, npu_smi


def make_runner(
    spec: ClusterSpec, host_name: str, backend: str = "auto", *, spec_dir: Path | None = None
) -> CommandRunner:
    """Build the runner for one spec host.

    Args:
        spec: the validated spec.
        host_name: a ``hosts[].name``.
        backend: auto (local for this machine's addresses, else ssh), local, ssh or sim.
        spec_dir: directory relative paths in the spec (sim cluster file) are resolved from.
    """
    sim_cluster = None
    if backend == "sim":
        if spec.sim is None:
            raise UsageError(
                "backend 'sim' needs a sim: section naming the sim cluster file",
                hint="add `sim: {cluster: sim-cluster.yaml}` to the spec, "
                "or create one with `ascend-pd sim init-cluster`",
            )
        sim_cluster = Path(spec.sim.cluster).expanduser()
        if spec_dir is not None and not sim_cluster.is_absolute():
            sim_cluster = spec_dir / sim_cluster
    return make_host_runner(spec.host(host_name), spec.ssh, backend, sim_cluster=sim_cluster)


def make_host_runner(
    host: HostSpec, ssh: SSHSpec, backend: str = "auto", *, sim_cluster: Path | None = None
) -> CommandRunner:
    """The runner for one host description (spec host, or one built from CLI flags)."""
    if backend == "sim":
        if sim_cluster is None:
            raise UsageError("backend 'sim' needs a sim cluster file",
                             hint="pass a spec with a sim: section")
        from ascend_pd.sim.runner import make_sim_runner

        sim_runner: CommandRunner = make_sim_runner(sim_cluster, host.name)
        return sim_runner
    if backend == "local" or (backend == "auto" and is_local_address(host.address)):
        from ascend_pd.runners.local import LocalRunner

        return LocalRunner(host.name, env=host.env)
    from ascend_pd.runners.ssh import SSHRunner

    ssh_runner: CommandRunner = SSHRunner(
        host.name,
        address=host.ssh.address or host.address,
        user=host.ssh.user or ssh.user,
        port=host.ssh.port or ssh.port,
        key_filename=host.ssh.key or ssh.key,
        known_hosts=ssh.known_hosts,
        host_key_policy=ssh.host_key_policy,
        connect_timeout=ssh.connect_timeout_s,
        use_agent=ssh.use_agent,
        env=host.env,
    )
    return ssh_runner


def runner_factory(
    spec: ClusterSpec, backend: str = "auto", *, spec_dir: Path | None = None
) -> Callable[[str], CommandRunner]:
    """``host name -> runner`` for use with :class:`~ascend_pd.runners.fanout.RunnerPool`."""
    return functools.partial(make_runner, spec, backend=backend, spec_dir=spec_dir)
