"""Whole-plan validation: spec structure (checked at load) plus the P/D consistency checks,
run over the one :class:`~ascend_pd.render.plan.DeploymentPlan` of the spec.

The checks are the explicit list :data:`ascend_pd.render.checks.PLAN_CHECKS` (functions
``(plan) -> list[Finding]``, the one finding type of :mod:`ascend_pd.findings`, run by
:func:`validate_plan`); nothing registers itself on import. Errors block render and
launch, warnings do not.
"""

from __future__ import annotations

from ascend_pd.findings import Finding
from ascend_pd.k8s.checks import k8s_findings
from ascend_pd.render.checks import validate_plan
from ascend_pd.render.findings import ValidationReport
from ascend_pd.render.plan import build_plan
from ascend_pd.spec.models import ClusterSpec

__all__ = ["Finding", "ValidationReport", "validate_plan", "validate_spec"]


def validate_spec(spec: ClusterSpec, *, target: str = "ssh") -> ValidationReport:
    """Build the plan of an already-loaded (structurally valid) spec and validate it
    (``target="k8s"``: plus the Kubernetes rules of :mod:`ascend_pd.k8s.checks`)."""
    plan = build_plan(spec)
    report = validate_plan(plan)
    if target == "k8s":
        report.findings.extend(k8s_findings(plan))
    return report
