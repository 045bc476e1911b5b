"""Every relative link in README.md and docs/ points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and bare docs/x.md mentions in prose (e.g. "see docs/render.md")
LINK = re.compile(r"\]\(([^)\s]+)\)")
MENTION = re.compile(r"(?<![\w/.])(docs/(?:runbooks/)?[\w.-]+\.md)")


def _targets(path: Path) -> list[tuple[str, Path]]:
    text = path.read_text(encoding="utf-8")
    found = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # http(s)/mailto links and anchors in the same page
        found.append((target, (path.parent / target.split("#")[0]).resolve()))
    for mention in MENTION.findall(text):
        found.append((mention, (ROOT / mention).resolve()))
    return found


SOURCES = sorted((ROOT / "src").rglob("*.py"))


def test_docs_cited_in_the_code_exist() -> None:
    broken = sorted({f"{p.relative_to(ROOT)}: {m}" for p in SOURCES
                     for m in MENTION.findall(p.read_text(encoding="utf-8"))
                     if not (ROOT / m).exists()})
    assert broken == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = [target for target, resolved in _targets(path) if not resolved.exists()]
    assert broken == [], f"{path.relative_to(ROOT)} links to missing files: {broken}"
