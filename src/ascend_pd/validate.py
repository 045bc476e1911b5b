"""Whole-plan validation: spec structure (at load) plus P/D consistency checks.

Checks are plain functions ``(spec) -> list[Finding]`` registered in ``CHECKS``; errors
block launch, warnings do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from ascend_pd.spec.models import ClusterSpec


@dataclass(frozen=True)
class Finding:
    """One validation finding, naming the key path it is about."""

    severity: Literal["error", "warning"]
    key: str
    message: str
    hint: str | None = None

    def line(self) -> str:
        return f"{self.severity}: {self.key}: {self.message}" + (
            f" — {self.hint}" if self.hint else ""
        )


@dataclass
class ValidationReport:
    spec_name: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "spec": self.spec_name,
            "valid": not self.errors,
            "errors": [asdict(f) for f in self.errors],
            "warnings": [asdict(f) for f in self.warnings],
        }

    def render(self) -> str:
        lines = [f.line() for f in self.errors + self.warnings]
        verdict = (
            f"spec '{self.spec_name}': {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
            if lines else f"spec '{self.spec_name}' is valid"
        )
        return "\n".join([*lines, verdict])


Check = Callable[[ClusterSpec], list[Finding]]

#: P/D consistency checks; the render/plan module registers its own here.
CHECKS: list[Check] = []


def validate_spec(spec: ClusterSpec) -> ValidationReport:
    """Run every registered check over an already-loaded (structurally valid) spec."""
    report = ValidationReport(spec.name)
    for check in CHECKS:
        report.findings.extend(check(spec))
    return report


# The P/D checks live with the renderer (they share its plan); importing registers them.
from ascend_pd.render import checks as _render_checks  # noqa: E402, F401
