"""Whole-plan validation: spec structure (checked at load) plus the P/D consistency checks,
run over the one :class:`~ascend_pd.render.plan.DeploymentPlan` of the spec.

The checks are the explicit list :data:`ascend_pd.render.checks.PLAN_CHECKS` (functions
``(plan) -> list[Finding]``, run by :func:`validate_plan`); nothing registers itself on
import. Errors block render and launch, warnings do not.
"""

from __future__ import annotations

from ascend_pd.render.checks import validate_plan
from ascend_pd.render.findings import Finding, ValidationReport
from ascend_pd.render.plan import build_plan
from ascend_pd.spec.models import ClusterSpec

__all__ = ["Finding", "ValidationReport", "validate_plan", "validate_spec"]


def validate_spec(spec: ClusterSpec) -> ValidationReport:
    """Build the plan of an already-loaded (structurally valid) spec and validate it."""
    return validate_plan(build_plan(spec))
