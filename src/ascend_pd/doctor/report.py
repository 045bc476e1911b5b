"""Run the doctor probe on hosts (one command per host, in parallel) and report."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ascend_pd.render.plan import DeploymentPlan
from ascend_pd.doctor.checks import HostPlan, planned_ports, run_checks
from ascend_pd.doctor.facts import Facts, parse_facts
from ascend_pd.errors import AscendPDError, ParseError, UsageError
from ascend_pd.findings import Finding, counts, host_check
from ascend_pd.printer import Layout, render_findings
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.factory import tool_paths
from ascend_pd.runners.fanout import Job, Outcome, fan_out
from ascend_pd.spec.models import ClusterSpec

#: the ``schema`` of ``doctor --json``'s data (docs/json.md)
SCHEMA: Final[str] = "ascend-pd/doctor/v1"
#: a grid of every check of every host, then a block for each warning and failure
LAYOUT: Final[Layout] = Layout(grid=("host", "check", "status", "observed"),
                               grid_labels={"pass": "pass", "warning": "warn", "error": "fail"},
                               show=("error", "warning"))
PROBE_PATH: Final[Path] = Path(__file__).resolve().parent / "probe.sh"
#: The probe imports Python packages (torch's metadata only, not torch) and runs npu-smi,
#: which can take several seconds on a busy 16-die host.
PROBE_TIMEOUT_S: Final[float] = 60.0


@functools.lru_cache(maxsize=1)
def probe_script() -> str:
    """The POSIX sh probe (a packaged file)."""
    return PROBE_PATH.read_text(encoding="utf-8")


def probe_argv(spec: ClusterSpec, host_name: str,
               deploy: DeploymentPlan | None = None) -> tuple[str, ...]:
    """``sh -c <probe> ascend-pd-doctor MODEL NIC STATE_DIR PORTS NPU_SMI PYTHON`` (and, on
    ``platform: cuda``, ``cuda NVIDIA_SMI GPU_FIELDS``)."""
    host = spec.host(host_name)
    ports = ",".join(str(p) for p in sorted(planned_ports(deploy, host_name)))
    _, npu_smi = tool_paths(host)
    python = host.env.get("ASCEND_PD_PYTHON", "python3")
    argv: tuple[str, ...] = ("sh", "-c", probe_script(), "ascend-pd-doctor", spec.model.path,
                             host.nic, spec.state_dir, ports, npu_smi, python)
    if spec.platform == "cuda":
        from ascend_pd.nvidiasmi.commands import QUERY_FIELDS

        argv += ("cuda", host.env.get("ASCEND_PD_NVIDIA_SMI", "nvidia-smi"),
                 ",".join(QUERY_FIELDS))
    return argv


@dataclass
class HostDoctor:
    """Checks for one host (one finding per check, passes included), or the error that kept
    the probe from running."""

    host: str
    checks: list[Finding] = field(default_factory=list)
    error: str | None = None
    facts: Facts | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or any(c.severity == "error" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ok": not self.failed,
            "error": self.error,
            "findings": [c.to_dict() for c in self.checks],
            "facts": self.facts.to_dict() if self.facts else None,
        }


@dataclass
class DoctorReport:
    hosts: list[HostDoctor] = field(default_factory=list)

    @property
    def checks(self) -> list[Finding]:
        return [c for h in self.hosts for c in h.checks]

    @property
    def exit_code(self) -> int:
        return 1 if any(h.failed for h in self.hosts) else 0

    def count(self, severity: str) -> int:
        return sum(1 for c in self.checks if c.severity == severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "ok": self.exit_code == 0,
            "summary": counts(self.checks)
            | {"host_errors": sum(1 for h in self.hosts if h.error)},
            "hosts": [h.to_dict() for h in self.hosts],
        }

    def render(self) -> str:
        errors = sum(1 for h in self.hosts if h.error)
        tail = [f"{h.host}: probe failed: {h.error}" for h in self.hosts if h.error]
        tail.append(
            f"doctor: {len(self.hosts)} host(s), {self.count('pass')} pass, "
            f"{self.count('warning')} warn, {self.count('error')} fail"
            + (f", {errors} unreachable" if errors else "")
        )
        return render_findings(self.checks, LAYOUT, tail=tail)


def deployment_plan(spec: ClusterSpec) -> tuple[DeploymentPlan | None, str | None]:
    """The command's one deployment plan, or why there is none (doctor still probes)."""
    from ascend_pd.render.plan import build_plan

    try:
        return build_plan(spec), None
    except AscendPDError as exc:
        return None, exc.message


def _host_result(spec: ClusterSpec, outcome: Outcome, deploy: DeploymentPlan | None,
                 deploy_error: str | None) -> HostDoctor:
    name = outcome.job.host
    if outcome.error is not None:
        return HostDoctor(name, error=outcome.error.message)
    result = outcome.result
    assert result is not None
    if result.failed:
        tail = result.tail("stderr", 3) or result.tail("stdout", 3)
        return HostDoctor(name, error=f"probe exited {result.exit_code}: {tail}")
    try:
        facts = parse_facts(result.stdout)
    except ParseError as exc:
        return HostDoctor(name, error=f"{exc.message}: {exc.line}")
    plan = HostPlan(spec, spec.host(name), planned_ports(deploy, name), deploy, deploy_error)
    return HostDoctor(name, run_checks(facts, plan), facts=facts)


def run_doctor(
    spec: ClusterSpec,
    runner_for: Callable[[str], CommandRunner],
    hosts: Sequence[str] | None = None,
    *,
    deep: bool = False,
    on_done: Callable[[Outcome, int, int], None] | None = None,
) -> DoctorReport:
    """Probe ``hosts`` (default: all spec hosts) in parallel and check each.

    Args:
        spec: the cluster spec (model path, NICs, ports, connector version).
        runner_for: host name -> runner, e.g. ``RunnerPool(runner_factory(spec)).get``.
        hosts: spec host names to check.
        deep: also read the vllm-ascend and vLLM installed on each host (their source, via
            the runner) and check the deployment plan against them (``doctor.deep``).
        on_done: progress callback, one call per host.

    Returns:
        One :class:`HostDoctor` per host, in the order asked; an unreachable host is an
        entry with ``error``, never an exception.

    Raises:
        UsageError: a host name is not in the spec.
    """
    names = list(hosts) if hosts else [h.name for h in spec.hosts]
    known = {h.name for h in spec.hosts}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"no host {', '.join(map(repr, unknown))} in the spec",
                         hint=f"use one of: {', '.join(sorted(known))}")
    deploy, deploy_error = deployment_plan(spec)
    jobs = [Job(n, probe_argv(spec, n, deploy), timeout=PROBE_TIMEOUT_S) for n in names]
    outcomes = fan_out(jobs, runner_for, on_done=on_done, retry_if=lambda _r: False)
    report = DoctorReport([_host_result(spec, o, deploy, deploy_error) for o in outcomes])
    if deep:
        _add_deep(spec, deploy, deploy_error, report, runner_for)
    return report


def _add_deep(spec: ClusterSpec, plan: DeploymentPlan | None, plan_error: str | None,
              report: DoctorReport, runner_for: Callable[[str], CommandRunner]) -> None:
    """Host truth: one scanner run per host, in parallel; its checks join the host's."""
    from ascend_pd.doctor.deep import DEEP_TIMEOUT_S, scanner_argv, truth_checks

    if spec.platform != "ascend":
        # --deep reads the installed vllm-ascend; upstream vLLM hosts have none to read.
        for host in report.hosts:
            host.checks.append(host_check(
                host=host.host, check="deep-installed", status="warn",
                observed=f"not run: --deep reads vllm-ascend's code; platform {spec.platform} "
                         "runs upstream vLLM", expected="platform ascend"))
        return
    if plan is None:
        for host in report.hosts:
            host.checks.append(host_check(host.host, "deep-plan", "fail",
                                           f"no deployment plan: {plan_error}",
                                           "a spec that renders",
                                           "ascend-pd validate -c pd.yaml says what to fix"))
        return
    wanted = [h for h in report.hosts if h.error is None]
    jobs = [Job(h.host, scanner_argv(spec, h.host), timeout=DEEP_TIMEOUT_S) for h in wanted]
    for host, outcome in zip(wanted, fan_out(jobs, runner_for, retry_if=lambda _r: False),
                             strict=True):
        result = outcome.result
        if outcome.error is not None or result is None or result.failed:
            why = outcome.error.message if outcome.error is not None else (
                result.tail("stderr", 3) if result is not None else "no result")
            host.checks.append(host_check(host.host, "deep-installed", "fail",
                                           f"the source scanner did not run: {why}",
                                           "python3 on the host"))
            continue
        try:
            installed = json.loads(result.stdout)
        except ValueError:
            host.checks.append(host_check(host.host, "deep-installed", "fail",
                                           f"the source scanner printed no JSON: "
                                           f"{result.tail('stdout', 1)}", "JSON facts"))
            continue
        procs = [p for p in plan.processes if p.host == host.host]
        host.checks.extend(truth_checks(host.host, installed, procs))
