"""nvidia-smi on ``platform: cuda`` hosts: argv builders (``commands``) and pure parsers
(``parse``) of the GPU query CSV and the summary header (driver and CUDA versions)."""

from __future__ import annotations

from ascend_pd.nvidiasmi.commands import QUERY_FIELDS, query_gpus
from ascend_pd.nvidiasmi.parse import Gpu, SmiVersions, nvml_error, parse_gpu_csv, parse_versions

__all__ = ["QUERY_FIELDS", "Gpu", "SmiVersions", "nvml_error", "parse_gpu_csv",
           "parse_versions", "query_gpus"]
