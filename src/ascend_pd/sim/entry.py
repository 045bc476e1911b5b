"""Shared ``main()`` body of the stand-in executables (hccn_tool, npu-smi)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from ascend_pd.errors import AscendPDError
from ascend_pd.sim.hccn_core import SimReply
from ascend_pd.sim.node import SimNode

CLUSTER_ENV = "ASCEND_PD_SIM_CLUSTER"
HOST_ENV = "ASCEND_PD_SIM_HOST"


def run_tool(prog: str, answer: Callable[[SimNode, list[str]], SimReply]) -> int:
    """Answer ``sys.argv`` as host ``$ASCEND_PD_SIM_HOST``: sleep, print, return the code."""
    cluster, host = os.environ.get(CLUSTER_ENV), os.environ.get(HOST_ENV)
    if not cluster or not host:
        missing = CLUSTER_ENV if not cluster else HOST_ENV
        sys.stderr.write(f"{prog}: {missing} is not set; the simulated tools need "
                         f"{CLUSTER_ENV} (the sim cluster file) and {HOST_ENV} (this host)\n")
        return 1
    try:
        node = SimNode(cluster, host)
        reply = answer(node, sys.argv)
    except AscendPDError as err:
        sys.stderr.write(f"{prog}: {err.message}\n")
        return 1
    if reply.delay_s:
        time.sleep(reply.delay_s)
    sys.stdout.write(reply.stdout)
    sys.stdout.flush()
    sys.stderr.write(reply.stderr)
    sys.stderr.flush()
    return reply.exit_code
