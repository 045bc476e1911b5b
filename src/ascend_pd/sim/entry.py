"""Shared body of the stand-in executables (hccn_tool, npu-smi, nvidia-smi): one call, one
reply.

``answer_tool`` is what both the one-shot executables (``run_tool``) and the resident
daemon (``ascend_pd.sim.simd``) run, so the two print the same bytes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final

from ascend_pd.errors import AscendPDError
from ascend_pd.sim.hccn_core import SimReply
from ascend_pd.sim.node import SimNode

CLUSTER_ENV = "ASCEND_PD_SIM_CLUSTER"
HOST_ENV = "ASCEND_PD_SIM_HOST"

Answer = Callable[[SimNode, list[str]], SimReply]

#: the stand-in tools by program name
ANSWERS: Final[dict[str, Answer]] = {
    "hccn_tool": lambda node, argv: node.hccn(argv),
    "npu-smi": lambda node, argv: node.npu_smi(argv),
    "nvidia-smi": lambda node, argv: node.nvidia_smi(argv),
}


def answer_tool(prog: str, cluster: str | None, host: str | None,
                argv: Sequence[str]) -> SimReply:
    """What ``prog argv[1:]`` prints as host ``host`` of the sim cluster file ``cluster``.

    Configuration problems (variables unset, unknown host, invalid file) are answered
    like a tool would: a message on stderr and exit 1.
    """
    if not cluster or not host:
        missing = CLUSTER_ENV if not cluster else HOST_ENV
        return SimReply(1, stderr=f"{prog}: {missing} is not set; the simulated tools need "
                        f"{CLUSTER_ENV} (the sim cluster file) and {HOST_ENV} (this host)\n")
    try:
        return ANSWERS[prog](SimNode(cluster, host), list(argv))
    except AscendPDError as err:
        return SimReply(1, stderr=f"{prog}: {err.message}\n")


def run_tool(prog: str) -> int:
    """Answer ``sys.argv`` as host ``$ASCEND_PD_SIM_HOST``: sleep, print, return the code."""
    reply = answer_tool(prog, os.environ.get(CLUSTER_ENV), os.environ.get(HOST_ENV), sys.argv)
    if reply.delay_s:
        time.sleep(reply.delay_s)
    sys.stdout.write(reply.stdout)
    sys.stdout.flush()
    sys.stderr.write(reply.stderr)
    sys.stderr.flush()
    return reply.exit_code
