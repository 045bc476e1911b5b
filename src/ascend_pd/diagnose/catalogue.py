"""The catalogue of known failure signatures (data in catalogue.yaml) and the matcher.

An entry is a known problem: one or more signatures (a regex on one line, optionally
"followed by" a second regex within N lines, or repeated at least N times), the cause,
the fix and the ascend-pd command that checks it. Matching is pure: text in, matches out.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from ascend_pd.errors import AscendPDError
from ascend_pd.findings import Finding

CATALOGUE_PATH: Final[Path] = Path(__file__).resolve().parent / "catalogue.yaml"


@dataclass(frozen=True)
class Signature:
    """One way a problem shows in a log.

    ``regex`` must match a line. With ``followed_by``, a later line within ``within``
    lines must match it too (a sequence). With ``min_count``, the regex must match at
    least that many lines (a loop that never ends); both together mean "repeated, then"
    (an engine that waits in a loop and then dies).
    """

    regex: re.Pattern[str]
    followed_by: re.Pattern[str] | None = None
    within: int = 50
    min_count: int = 1


@dataclass(frozen=True)
class Entry:
    """A known problem: how to recognise it and what to do about it."""

    id: str
    title: str
    signatures: tuple[Signature, ...]
    cause: str
    fix: str
    check: str
    #: less specific entries this one explains (dropped when this one matches)
    supersedes: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    """One catalogue entry found in one log."""

    entry: Entry
    source: str
    #: 1-based number of the first matching line
    line_no: int
    line: str
    #: lines that matched the signature (for loops: how often it repeated)
    count: int = 1
    #: the second line of a sequence signature, when there is one
    then_line_no: int | None = None
    then_line: str | None = None

    @property
    def id(self) -> str:
        return self.entry.id

    def to_finding(self) -> Finding:
        """The diagnosis as the one finding type: where (log and line), what (the entry's
        title), the matching lines, the cause, the fix and the ascend-pd command that
        checks for it before it happens."""
        evidence = [self.line.strip()]
        if self.then_line is not None:
            evidence.append(f"...{self.then_line_no}: {self.then_line.strip()}")
        title = self.entry.title + (f" (matched {self.count} lines)" if self.count > 1 else "")
        return Finding(severity="error", check=self.entry.id, message=title,
                       file=self.source, line=self.line_no, evidence=tuple(evidence),
                       cause=self.entry.cause, fix=self.entry.fix, verify=self.entry.check)


@dataclass(frozen=True)
class Catalogue:
    """All entries, in file order (the order matches are reported in)."""

    entries: tuple[Entry, ...]
    path: str = field(default=str(CATALOGUE_PATH))

    def get(self, entry_id: str) -> Entry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise KeyError(entry_id)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]


def _compile(pattern: object, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise AscendPDError(f"{where}: a regex must be a non-empty string")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise AscendPDError(
            f"{where}: invalid regex {pattern!r}: {exc}",
            hint="Fix the pattern in the diagnose catalogue (Python re syntax).",
        ) from exc


def _parse_entry(raw: dict[str, Any], index: int) -> Entry:
    where = f"entries[{index}] ({raw.get('id', '?')})"
    missing = [k for k in ("id", "title", "signatures", "cause", "fix", "check") if not raw.get(k)]
    if missing:
        raise AscendPDError(f"{where}: missing {', '.join(missing)}",
                            hint="Every catalogue entry needs id, title, signatures, cause, "
                            "fix and check.")
    sigs = []
    for j, sig in enumerate(raw["signatures"]):
        here = f"{where}.signatures[{j}]"
        if not isinstance(sig, dict):
            sig = {"regex": sig}
        sigs.append(Signature(
            regex=_compile(sig.get("regex"), here),
            followed_by=_compile(sig["followed_by"], here) if sig.get("followed_by") else None,
            within=int(sig.get("within", 50)),
            min_count=int(sig.get("min_count", 1)),
        ))
    return Entry(
        id=str(raw["id"]), title=str(raw["title"]).strip(), signatures=tuple(sigs),
        cause=" ".join(str(raw["cause"]).split()), fix=" ".join(str(raw["fix"]).split()),
        check=str(raw["check"]).strip(), supersedes=tuple(raw.get("supersedes") or ()),
        refs=tuple(str(r) for r in raw.get("refs") or ()),
    )


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load and compile the catalogue (the packaged one by default; cached).

    Raises:
        AscendPDError: the file is unreadable, an entry is incomplete or a regex is invalid.
    """
    return _load(str(Path(path) if path else CATALOGUE_PATH))


@functools.lru_cache(maxsize=8)
def _load(path: str) -> Catalogue:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AscendPDError(f"cannot read the diagnose catalogue {path}: {exc}",
                            hint="Reinstall ascend-pd, or fix the YAML.") from exc
    entries = tuple(_parse_entry(raw, i) for i, raw in enumerate(data.get("entries") or []))
    ids = [e.id for e in entries]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise AscendPDError(f"{path}: duplicate entry ids: {', '.join(dupes)}")
    return Catalogue(entries, path)


def _match_signature(sig: Signature, lines: list[str]) -> tuple[int, int, int | None] | None:
    """``(first index, count, then index)`` when ``sig`` matches ``lines``, else None."""
    hits = [i for i, text in enumerate(lines) if sig.regex.search(text)]
    if not hits or len(hits) < sig.min_count:
        return None
    if sig.followed_by is not None:
        # "repeated, then": the follow-up counts only after the min_count-th hit.
        for i in hits[sig.min_count - 1:]:
            for k in range(i + 1, min(len(lines), i + 1 + sig.within)):
                if sig.followed_by.search(lines[k]):
                    return i, len(hits), k
        return None
    return hits[0], len(hits), None


def diagnose_text(text: str, source: str, catalogue: Catalogue | None = None) -> list[Match]:
    """Find every known problem in ``text`` (one log).

    Args:
        text: the log content.
        source: what to call it in matches (a file name, ``instance@host``).
        catalogue: entries to look for (default: :func:`load_catalogue`).

    Returns:
        One match per entry found (its earliest signature hit), in catalogue order;
        entries superseded by a more specific match are left out.
    """
    cat = catalogue or load_catalogue()
    lines = text.splitlines()
    found: list[Match] = []
    for entry in cat.entries:
        best: tuple[int, int, int | None] | None = None
        for sig in entry.signatures:
            hit = _match_signature(sig, lines)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
        if best is None:
            continue
        first, count, then = best
        found.append(Match(
            entry=entry, source=source, line_no=first + 1, line=lines[first].rstrip(),
            count=count, then_line_no=None if then is None else then + 1,
            then_line=None if then is None else lines[then].rstrip(),
        ))
    dropped = {s for m in found for s in m.entry.supersedes}
    return [m for m in found if m.id not in dropped]
