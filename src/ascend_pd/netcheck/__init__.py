"""Cluster-wide hccn_tool preflight: per-device checks and the Prefill↔Decode ping matrix.

Entry point: :func:`check_network` over :class:`Targets` built by ``targets_from_spec``,
``targets_from_ranktable`` or ``targets_from_flags``; ``fix`` repairs TLS consistency.
"""

from __future__ import annotations

from ascend_pd.netcheck.report import CheckReport, Finding, Skipped
from ascend_pd.netcheck.run import CheckOptions, check_network
from ascend_pd.netcheck.targets import (
    Targets,
    targets_from_flags,
    targets_from_ranktable,
    targets_from_spec,
)

__all__ = [
    "CheckOptions",
    "CheckReport",
    "Finding",
    "Skipped",
    "Targets",
    "check_network",
    "targets_from_flags",
    "targets_from_ranktable",
    "targets_from_spec",
]
