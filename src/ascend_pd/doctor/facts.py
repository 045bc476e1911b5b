"""Parse the probe's ``key=value`` lines into :class:`Facts` (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ascend_pd.errors import ParseError


@dataclass(frozen=True)
class Facts:
    """What the probe saw on one host. A key may hold several values, in order."""

    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (``default`` when absent)."""
        found = self.values.get(key)
        return found[0] if found else default

    def all(self, key: str) -> tuple[str, ...]:
        """Every value of ``key``, in the order printed."""
        return self.values.get(key, ())

    def to_dict(self) -> dict[str, object]:
        return {k: (v[0] if len(v) == 1 else list(v)) for k, v in self.values.items()}


def parse_facts(text: str) -> Facts:
    """Parse probe output. Values under the sysroot are shown as on a real host.

    Raises:
        ParseError: the output does not come from the probe (no ``probe.version``).
    """
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key or " " in key:
            continue
        values.setdefault(key, []).append(value)
    if "probe.version" not in values:
        first = text.strip().splitlines()[0] if text.strip() else "<empty output>"
        raise ParseError("the doctor probe printed no facts", line=first,
                         hint="Run with -v; the host's /bin/sh must be POSIX.")
    root = values.get("probe.sysroot", [""])[0].rstrip("/")
    if root:
        # A simulated host: strip the tree's prefix so paths read as on a real host.
        for key, vals in values.items():
            if key != "probe.sysroot":
                values[key] = [v[len(root):] if v.startswith(root + "/") else v for v in vals]
    return Facts({k: tuple(v) for k, v in values.items()})
