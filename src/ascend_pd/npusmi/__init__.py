"""npu-smi: argv builders (``commands``), pure parsers (``parse``), SoC detection and SDID
layout (``soc``), and a client over a runner (``client``)."""

from __future__ import annotations

from ascend_pd.npusmi.client import NpuSmiClient
from ascend_pd.npusmi.parse import NpuSmiToolError
from ascend_pd.npusmi.soc import Sdid, detect_soc, sdid_decode, sdid_encode

__all__ = ["NpuSmiClient", "NpuSmiToolError", "Sdid", "detect_soc", "sdid_decode", "sdid_encode"]
