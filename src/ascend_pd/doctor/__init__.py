"""`ascend-pd doctor`: one probe per host, pure checks over its facts, a report of findings
(``ascend_pd.findings``: pass / warning / error per check)."""

from __future__ import annotations

from ascend_pd.doctor.checks import CHECKS, CheckResult, HostPlan, planned_ports, run_checks
from ascend_pd.doctor.facts import Facts, parse_facts
from ascend_pd.doctor.report import DoctorReport, HostDoctor, probe_argv, run_doctor

__all__ = [
    "CHECKS",
    "CheckResult",
    "DoctorReport",
    "Facts",
    "HostDoctor",
    "HostPlan",
    "parse_facts",
    "planned_ports",
    "probe_argv",
    "run_checks",
    "run_doctor",
]
