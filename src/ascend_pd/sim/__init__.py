"""The simulated Ascend node: sim cluster file (``cluster``), persisted state (``state``),
pure cores (``hccn_core``, ``npusmi_core``), the host shell (``node``), the in-process
runner (``runner``), stand-in executables (``hccn_tool``, ``npu_smi``) and ``install``."""

from __future__ import annotations

from ascend_pd.sim.cluster import (
    SimCluster,
    SimDevice,
    SimHost,
    generate_cluster,
    load_cluster,
    save_cluster,
)
from ascend_pd.sim.hccn_core import SimReply, simulate_hccn
from ascend_pd.sim.npusmi_core import simulate_npu_smi

__all__ = [
    "SimCluster",
    "SimDevice",
    "SimHost",
    "SimReply",
    "generate_cluster",
    "load_cluster",
    "save_cluster",
    "simulate_hccn",
    "simulate_npu_smi",
]
