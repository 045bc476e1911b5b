"""ascend-pd: from a list of Ascend NPU hosts to a serving P/D-disaggregated vLLM-Ascend endpoint.

The library API a runbook can import; the ``ascend-pd`` CLI is a thin layer over it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ascend_pd.errors import AscendPDError
from ascend_pd.spec import ClusterSpec, load_spec, parse_spec
from ascend_pd.validate import ValidationReport, validate_spec

__all__ = [
    "AscendPDError",
    "ClusterSpec",
    "ValidationReport",
    "__version__",
    "load_spec",
    "parse_spec",
    "validate_spec",
]
