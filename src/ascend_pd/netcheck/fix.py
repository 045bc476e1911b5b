"""``--fix tls``: make the TLS switch identical on every device, then check again.

``off`` (the default, what the runbooks recommend) sets ``enable 0`` wherever TLS is on;
``majority`` sets every device to the value most devices already have. Set commands take
hccn_tool's lock, so each host's devices are changed one at a time (hosts in parallel), and a
"busy" answer is retried by ``HccnClient``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from ascend_pd.errors import AscendPDError
from ascend_pd.hccn.client import HccnClient
from ascend_pd.netcheck.report import CheckReport, FixOutcome
from ascend_pd.netcheck.run import CheckOptions, ProgressFn, ToolsFor, check_network
from ascend_pd.netcheck.targets import Targets
from ascend_pd.runners.base import CommandRunner

FixMode = Literal["off", "majority"]


def tls_changes(report: CheckReport, mode: FixMode = "off") -> tuple[int, list[tuple[str, int]]]:
    """The target switch value and the (host, device) pairs that must change (pure)."""
    target = 0 if mode == "off" else (report.tls_reference or 0)
    return target, sorted(k for k, v in report.tls_values.items() if v != target)


def apply_tls(changes: list[tuple[str, int]], target: int,
              runner_for: Callable[[str], CommandRunner], tools: ToolsFor, *,
              max_hosts: int = 64) -> FixOutcome:
    """Run ``hccn_tool -i N -tls -s enable TARGET`` on each device (never raises per device)."""
    by_host: dict[str, list[int]] = {}
    for host, dev in changes:
        by_host.setdefault(host, []).append(dev)

    def one_host(host: str) -> list[tuple[int, AscendPDError | None]]:
        out: list[tuple[int, AscendPDError | None]] = []
        try:
            client = HccnClient(runner_for(host), tools(host)[0])
        except AscendPDError as exc:
            return [(dev, exc) for dev in by_host[host]]
        for dev in by_host[host]:
            try:
                client.tls_set(dev, bool(target))
                out.append((dev, None))
            except AscendPDError as exc:
                out.append((dev, exc))
        return out

    outcome = FixOutcome(target)
    if not by_host:
        return outcome
    with ThreadPoolExecutor(max_workers=min(max_hosts, len(by_host))) as pool:
        for host, results in zip(by_host, pool.map(one_host, by_host), strict=True):
            for dev, err in results:
                entry: dict[str, Any] = {"host": host, "device": dev}
                if err is None:
                    outcome.changed.append(entry)
                else:
                    outcome.failed.append({**entry, "error": err.message, "hint": err.hint})
    return outcome


def fix_tls(
    report: CheckReport, targets: Targets, runner_for: Callable[[str], CommandRunner],
    tools: ToolsFor, *, mode: FixMode = "off", options: CheckOptions | None = None,
    on_progress: ProgressFn | None = None,
) -> CheckReport:
    """Apply the TLS fix for ``report`` and return a fresh check with ``fix`` filled in."""
    target, changes = tls_changes(report, mode)
    opts = options or CheckOptions()
    outcome = apply_tls(changes, target, runner_for, tools, max_hosts=opts.max_hosts)
    again = check_network(targets, runner_for, tools, options=opts, on_progress=on_progress)
    again.fix = outcome
    return again
