"""ascend-pd: from a list of Ascend NPU hosts to a serving P/D-disaggregated vLLM-Ascend endpoint.

The library API a runbook can import; the ``ascend-pd`` CLI is a thin layer over it. Names are
imported on first use, so that the simulated ``hccn_tool`` / ``npu-smi`` (which run as a new
process per call) do not pay for the whole package at every start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AscendPDError": "ascend_pd.errors",
    "ClusterSpec": "ascend_pd.spec",
    "Finding": "ascend_pd.findings",
    "load_spec": "ascend_pd.spec",
    "parse_spec": "ascend_pd.spec",
    "ValidationReport": "ascend_pd.validate",
    "validate_spec": "ascend_pd.validate",
}

if TYPE_CHECKING:
    from ascend_pd.errors import AscendPDError
    from ascend_pd.findings import Finding
    from ascend_pd.spec import ClusterSpec, load_spec, parse_spec
    from ascend_pd.validate import ValidationReport, validate_spec

__all__ = [
    "AscendPDError",
    "ClusterSpec",
    "Finding",
    "ValidationReport",
    "__version__",
    "load_spec",
    "parse_spec",
    "validate_spec",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ascend_pd' has no attribute {name!r}")
