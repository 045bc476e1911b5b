"""The execution seam: one ``run(argv) -> CommandResult`` over local, SSH and simulated hosts."""

from __future__ import annotations

from ascend_pd.runners.base import DEFAULT_TIMEOUT_S, CommandResult, CommandRunner
from ascend_pd.runners.fanout import (
    Job,
    Outcome,
    RetryPolicy,
    RunnerPool,
    fan_out,
    is_tool_busy,
    run_with_retry,
)
from ascend_pd.runners.local import LocalRunner
from ascend_pd.runners.simulated import Reply, SimulatedRunner

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "CommandResult",
    "CommandRunner",
    "Job",
    "LocalRunner",
    "Outcome",
    "Reply",
    "RetryPolicy",
    "RunnerPool",
    "SimulatedRunner",
    "fan_out",
    "is_tool_busy",
    "run_with_retry",
]
