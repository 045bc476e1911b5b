"""The one finding type of ``validate`` / ``render`` / ``launch``, and the report that prints it.

A finding names the spec key it is about, says what is wrong and how to fix it. Errors block
render and launch; warnings are printed and do not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from ascend_pd.errors import SpecError


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

    def raise_for_errors(self, action: str = "rendered") -> None:
        """Raise when there are errors: the deployment would not work, so nothing is done.

        Raises:
            SpecError: listing every error (exit 2), the first one in the message.
        """
        if not self.errors:
            return
        first = self.errors[0].line().removeprefix("error: ")
        raise SpecError(
            f"spec '{self.spec_name}': {first}; nothing {action}" if len(self.errors) == 1
            else f"spec '{self.spec_name}' has {len(self.errors)} P/D errors; nothing {action}",
            hint="fix them (see `ascend-pd validate -c <spec>`) and try again",
            problems=[f.line() for f in self.errors])
