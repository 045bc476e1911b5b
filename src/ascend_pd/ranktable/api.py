"""gen-ranktable as a library: plan -> collect -> validate -> table; and the drift check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ascend_pd.findings import Finding
from ascend_pd.ranktable.build import build_ranktable
from ascend_pd.ranktable.collect import ToolPaths, collect_facts
from ascend_pd.ranktable.facts import HostFacts
from ascend_pd.ranktable.io import diff_live, plan_from_table
from ascend_pd.ranktable.plan import RanktablePlan
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.fanout import Outcome

RunnerFor = Callable[[str], CommandRunner]
Progress = Callable[[Outcome, int, int], None]
#: the ``schema`` of ``gen-ranktable --verify --json``'s data (docs/json.md)
VERIFY_SCHEMA: Final[str] = "ascend-pd/gen-ranktable-verify/v1"


@dataclass
class RanktableResult:
    table: dict[str, Any]
    facts: dict[str, HostFacts]

    def summary_rows(self) -> list[tuple[str, str, str, str]]:
        """(host, role, devices, device IPs) per host and role, in table order."""
        rows: dict[tuple[str, str], list[dict[str, str]]] = {}
        for role in ("prefill", "decode"):
            for entry in self.table[f"{role}_device_list"]:
                rows.setdefault((entry["server_id"], role), []).append(entry)
        names = {f.address: f.host for f in self.facts.values()}
        out = []
        for (server, role), entries in rows.items():
            name = names.get(server, server)
            label = server if name == server else f"{name} ({server})"
            ids = ",".join(e["device_id"] for e in entries)
            ips = entries[0]["device_ip"] + (
                f" … {entries[-1]['device_ip']}" if len(entries) > 1 else "")
            out.append((label, role, ids, ips))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"ranktable": self.table,
                "hosts": {name: f.to_dict() for name, f in self.facts.items()}}


def generate(plan: RanktablePlan, runner_for: RunnerFor, tool_paths: ToolPaths, *,
             on_done: Progress | None = None, facts: dict[str, HostFacts] | None = None,
             nic_for: Callable[[str], str | None] | None = None) -> RanktableResult:
    """Collect (unless ``facts`` are given, e.g. from --from files), validate and build.

    Raises:
        DeviceIpMissingError: a device has no IP (exit 13).
        RanktableError: any other inconsistency; nothing should be written.
    """
    if facts is None:
        facts = collect_facts(plan, runner_for, tool_paths, on_done=on_done, nic_for=nic_for)
    return RanktableResult(build_ranktable(plan, facts), facts)


@dataclass
class VerifyResult:
    #: one error finding per difference (check: the kind, e.g. ``device_ip_changed``)
    drifts: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drifts

    def to_dict(self) -> dict[str, Any]:
        return {"schema": VERIFY_SCHEMA, "ok": self.ok,
                "drift": [d.to_dict() for d in self.drifts]}


def verify(table: dict[str, Any], runner_for: RunnerFor, tool_paths: ToolPaths, *,
           names: dict[str, str] | None = None, on_done: Progress | None = None) -> VerifyResult:
    """Re-collect from the hosts named in ``table`` and list every difference."""
    plan = plan_from_table(table, names)
    facts = collect_facts(plan, runner_for, tool_paths, on_done=on_done)
    return VerifyResult(diff_live(table, plan, facts))
