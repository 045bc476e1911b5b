"""``gen-ranktable --push``: copy the table to ``connector.ranktable_path`` on every host.

In parallel (``fan_out``, one command per host), atomically on each host (temp file +
rename, ``launch.remote.PUSH``); a host that fails is one result, the others still get
the table. The command exits 3 when any host failed (docs/exit-codes.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from ascend_pd.launch import remote
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.fanout import Job, fan_out
from ascend_pd.spec.models import ClusterSpec


@dataclass(frozen=True)
class PushResult:
    """One host's copy: where it went, or why not."""

    host: str
    path: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def push_ranktable(
    spec: ClusterSpec, content: str, runner_for: Callable[[str], CommandRunner], *,
    max_hosts: int = 64, timeout: float = 30.0,
) -> list[PushResult]:
    """Write ``content`` to ``spec.connector.ranktable_path`` on every spec host."""
    dest = PurePosixPath(spec.connector.ranktable_path)
    words, stdin = remote.push_args({dest.name: (content, 0o644)})
    # No state dir to vouch for (first PUSH argument empty): the table goes to a system
    # folder of the operator's. The content travels on stdin, never in argv.
    argv = tuple(remote.sh(remote.PUSH, "", str(dest.parent), *words))
    jobs = [Job(host.name, argv, timeout=timeout, stdin=stdin) for host in spec.hosts]
    results = []
    for outcome in fan_out(jobs, runner_for, max_hosts=max_hosts, per_host=1):
        error = None
        if outcome.error is not None:
            error = outcome.error.message
        elif outcome.result is not None and outcome.result.failed:
            error = (outcome.result.tail("stderr") or f"exit {outcome.result.exit_code}")
        results.append(PushResult(outcome.job.host, str(dest), error))
    return results
