"""``make_sim_runner``: the in-process backend ``sim`` (no processes, same bytes as the tools)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from ascend_pd.hostnet import IP_ADDR_ARGV
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.simulated import Reply, SimulatedRunner
from ascend_pd.sim.node import SimNode

HCCN_NAMES: Final[frozenset[str]] = frozenset({"hccn_tool", "ascend-pd-sim-hccn-tool"})
NPU_SMI_NAMES: Final[frozenset[str]] = frozenset({"npu-smi", "ascend-pd-sim-npu-smi"})
NVIDIA_SMI_NAMES: Final[frozenset[str]] = frozenset({"nvidia-smi", "ascend-pd-sim-nvidia-smi"})


def make_sim_runner(cluster_path: Path, host_name: str) -> CommandRunner:
    """A runner answering hccn_tool / npu-smi / nvidia-smi for ``host_name`` of the sim
    cluster file.

    Dispatches on the basename of argv[0], so spec tool paths such as
    ``/usr/local/Ascend/driver/tools/hccn_tool`` work unchanged. Simulated delays are
    honoured: a hung device raises ``CommandTimeoutError`` after the caller's timeout.
    Any other command raises ``SimulatedCommandNotFound``.

    Raises:
        SpecError: the cluster file is missing or invalid.
        UsageError: the host is not in it.
    """
    node = SimNode(cluster_path, host_name)

    def handler(argv: Sequence[str], env: Mapping[str, str]) -> Reply | None:
        if not argv:
            return None
        tool = os.path.basename(argv[0])
        if tuple(argv) == IP_ADDR_ARGV:
            return Reply(_ip_addr_show(node.host().address))
        if tool in HCCN_NAMES:
            reply = node.hccn(list(argv))
        elif tool in NPU_SMI_NAMES:
            reply = node.npu_smi(list(argv))
        elif tool in NVIDIA_SMI_NAMES:
            reply = node.nvidia_smi(list(argv))
        else:
            return None
        return Reply(reply.stdout, reply.stderr, reply.exit_code, reply.delay_s)

    return SimulatedRunner(host_name, handler)  # type: ignore[arg-type]


def _ip_addr_show(address: str) -> str:
    # The simulated host's own addresses, as `ip -o -4 addr show` prints them, so the
    # server_id check of gen-ranktable works in-process too.
    return (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
        f"2: eth0    inet {address}/24 brd + scope global eth0\\"
        "       valid_lft forever preferred_lft forever\n"
    )
