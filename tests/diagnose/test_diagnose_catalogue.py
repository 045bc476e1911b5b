"""Every catalogue entry is recognised in a realistic log, and only that entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ascend_pd.diagnose import diagnose_text, load_catalogue
from ascend_pd.errors import AscendPDError

DATA = Path(__file__).resolve().parent.parent / "data" / "diagnose"
CATALOGUE = load_catalogue()


#: every sample log: ``<entry id>.log`` or ``<entry id>.<variant>.log`` (e.g. a CUDA log)
SAMPLES = sorted(p for p in DATA.glob("*.log") if p.name != "clean.log")


def _entry_of(path: Path) -> str:
    return path.name.split(".")[0]


@pytest.mark.parametrize("entry_id", CATALOGUE.ids)
def test_every_entry_has_a_sample_log(entry_id: str) -> None:
    path = DATA / f"{entry_id}.log"
    assert path.is_file(), f"every catalogue entry needs a sample log: {path}"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_log_matches_its_entry_and_nothing_else(path: Path) -> None:
    # All entries x all samples: each sample names exactly one entry, its own.
    entry_id = _entry_of(path)
    matches = diagnose_text(path.read_text(encoding="utf-8"), path.name)
    assert [m.id for m in matches] == [entry_id]
    match = matches[0]
    entry = CATALOGUE.get(entry_id)
    assert match.source == path.name
    line = path.read_text(encoding="utf-8").splitlines()[match.line_no - 1]
    assert match.line == line.rstrip()
    assert entry.check.startswith("ascend-pd ")
    assert entry.cause
    assert entry.fix


def test_clean_log_matches_nothing() -> None:
    text = (DATA / "clean.log").read_text(encoding="utf-8")
    # The healthy log carries the usual noise: vllm._C warning, a few link polls, decode
    # graph capture, a few delayed frees; none of them is a problem.
    assert "No module named 'vllm._C'" in text
    assert diagnose_text(text, "clean.log") == []


def test_every_sample_log_belongs_to_an_entry() -> None:
    assert {_entry_of(p) for p in SAMPLES} == set(CATALOGUE.ids)


def test_every_entry_cites_an_upstream_source() -> None:
    # Issues/PRs ('#N', 'owner/repo#N') or upstream files; never notes a clone cannot open.
    for entry in CATALOGUE.entries:
        assert entry.refs, entry.id
        assert not [r for r in entry.refs if re.search(r"\.md §", r)], entry.id
    cited = {m for e in CATALOGUE.entries for r in e.refs for m in re.findall(r"#\d+", r)}
    # the 17 pain points of the vllm-ascend P/D survey, by their upstream issue or PR
    for issue in ("#2618", "#2900", "#2399", "#4866", "#2498", "#1680", "#4725", "#6949",
                  "#5609", "#5635", "#7711", "#13240", "#12170", "#4161", "#4547", "#5461",
                  "#2939", "#4488"):
        assert issue in cited, issue


def _loop(n: int) -> str:
    return "".join(
        f"INFO 11-20 09:17:{i % 60:02d} [c.py:701] Checking query_register_mem_status again\n"
        for i in range(n))


def test_a_loop_needs_its_minimum_count() -> None:
    assert diagnose_text(_loop(29), "x") == []
    (match,) = diagnose_text(_loop(30), "x")
    assert match.id == "register-mem-status-loop"
    assert match.count == 30
    assert match.line_no == 1


def test_a_sequence_must_happen_within_its_window() -> None:
    head = '400 Bad Request for url http://p:8100/v1/completions\n'
    tail = 'INFO:     10.0.0.5:1 - "POST /v1/completions HTTP/1.1" 500 Internal Server Error\n'
    assert [m.id for m in diagnose_text(head + tail, "proxy")] == ["proxy-masked-4xx"]
    far = head + "INFO: noise\n" * 25 + tail
    assert diagnose_text(far, "proxy") == []


def test_sequence_match_reports_both_lines() -> None:
    text = (DATA / "aclgraph-link-failure.log").read_text(encoding="utf-8")
    (match,) = diagnose_text(text, "p.log")
    assert "Graph capturing finished" in match.line
    assert "LLM_LINK_FAILED" in (match.then_line or "")
    assert (match.then_line_no or 0) > match.line_no


def test_invalid_regex_in_a_catalogue_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "cat.yaml"
    bad.write_text("entries:\n  - {id: x, title: t, cause: c, fix: f, check: ascend-pd doctor,"
                   " signatures: ['(unclosed']}\n", encoding="utf-8")
    with pytest.raises(AscendPDError, match=r"entries\[0\] \(x\).*invalid regex"):
        load_catalogue(bad)


def test_incomplete_entry_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "cat.yaml"
    bad.write_text("entries:\n  - {id: x, title: t, signatures: [a]}\n", encoding="utf-8")
    with pytest.raises(AscendPDError, match="missing cause, fix, check"):
        load_catalogue(bad)
