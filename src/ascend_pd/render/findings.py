"""The report of ``validate`` / ``render`` / ``launch``: the P/D findings of the one plan.

The findings are :class:`ascend_pd.findings.Finding` (the one type), each naming the spec key
it is about and, when the spec was read from a file, that key's YAML line. Errors block
render and launch; warnings are printed and do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ascend_pd import findings as fnd
from ascend_pd.errors import SpecError
from ascend_pd.printer import Layout, finding_line, render_findings

#: the ``schema`` of ``validate --json``'s data (docs/json.md)
SCHEMA: Final[str] = "ascend-pd/validate/v1"
_LAYOUT: Final[Layout] = Layout(style="line", show=("error", "warning"))


class Finding(fnd.Finding):
    """Kept importable for one release: plan checks written against the former
    ``render.findings.Finding(severity, key, message, hint)`` keep working while other
    branches move to :func:`ascend_pd.findings.at_key`. It builds the one type; new code calls
    ``findings.at_key`` instead."""

    def __init__(self, severity: fnd.Severity, key: str, message: str,
                 hint: str | None = None) -> None:
        super().__init__(severity=severity, check="", message=message, fix=hint or "", key=key)


@dataclass
class ValidationReport:
    spec_name: str
    findings: list[fnd.Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[fnd.Finding]:
        return fnd.errors(self.findings)

    @property
    def warnings(self) -> list[fnd.Finding]:
        return fnd.warnings(self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "spec": self.spec_name,
            "valid": not self.errors,
            "summary": {"errors": len(self.errors), "warnings": len(self.warnings)},
            "findings": [f.to_dict() for f in self.errors + self.warnings],
        }

    def render(self) -> str:
        shown = self.errors + self.warnings
        verdict = (
            f"spec '{self.spec_name}': {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
            if shown else f"spec '{self.spec_name}' is valid"
        )
        return render_findings(shown, _LAYOUT, tail=[verdict])

    def raise_for_errors(self, action: str = "rendered") -> None:
        """Raise when there are errors: the deployment would not work, so nothing is done.

        Raises:
            SpecError: listing every error (exit 2), the first one in the message.
        """
        if not self.errors:
            return
        first = finding_line(self.errors[0], severity=False)
        raise SpecError(
            f"spec '{self.spec_name}': {first}; nothing {action}" if len(self.errors) == 1
            else f"spec '{self.spec_name}' has {len(self.errors)} P/D errors; nothing {action}",
            hint="fix them (see `ascend-pd validate -c <spec>`) and try again",
            findings=self.errors)
