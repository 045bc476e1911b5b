"""hccn_tool: argv builders (``commands``), pure parsers (``parse``, ``ping``), failure
classification (``failures``) and a client over a runner (``client``)."""

from __future__ import annotations

from ascend_pd.hccn.client import HccnClient, HccnReading, parse_outcome, query_job
from ascend_pd.hccn.failures import HccnFailure, HccnToolError, classify_error

__all__ = [
    "HccnClient",
    "HccnFailure",
    "HccnReading",
    "HccnToolError",
    "classify_error",
    "parse_outcome",
    "query_job",
]
