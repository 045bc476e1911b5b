"""Rendered deployments match the golden files, and every script is valid bash."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from ascend_pd import releases
from ascend_pd.render import check_deploy, render_deploy
from ascend_pd.spec import parse_spec

from .conftest import GOLDEN, lint_scripts, load, spec_text

CASES = ["a3-seed", "a2-1p1d-single", "a2-2p1d-dp", "a3-2p1d", "a2-1p1d-legacy-llmdatadist",
         "a3-external-dp",
         # upstream vLLM on GPUs, traced to upstream in SOURCES.md (test_cuda_sources.py)
         "cuda-gb200-nixl", "cuda-p2pnccl-1p1d"]
#: one spec rendered for each release: what the release facts decide, traced to upstream in
#: tests/golden/render/SOURCES.md
RELEASES = ["0.11.0", "0.13.0", "0.18.0", "0.23.0.post1", "0.30.0rc2"]


def _compare(out: Path, golden: Path, files: list[str], update: bool) -> None:
    if update:
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(out, golden)
    rendered = sorted(p.name for p in out.iterdir())
    assert rendered == sorted(files)
    assert rendered == sorted(p.name for p in golden.iterdir()), (
        "file set differs; regenerate with: pytest tests/render --update-golden")
    for name in rendered:
        assert (out / name).read_text() == (golden / name).read_text(), (
            f"{golden.name}/{name} differs from the golden file; if intended, "
            "regenerate with: pytest tests/render --update-golden")


@pytest.mark.parametrize("case", CASES)
def test_render_matches_golden(case: str, tmp_path: Path, update_golden: bool) -> None:
    out = tmp_path / "deploy"
    result = render_deploy(load(case), out, f"{case}.yaml")
    _compare(out, GOLDEN / case, result.files, update_golden)


@pytest.mark.parametrize("release", RELEASES)
def test_each_release_renders_what_it_reads(release: str, tmp_path: Path,
                                            update_golden: bool) -> None:
    text = spec_text("release-golden").replace("@version@", release)
    spec = parse_spec(text, "release-golden.yaml")
    out = tmp_path / "deploy"
    result = render_deploy(spec, out, "release-golden.yaml")
    assert result.warnings == []  # every one of them is a release the data knows exactly
    _compare(out, GOLDEN / f"release-{release}", result.files, update_golden)
    lint_scripts(sorted(out.glob("*.sh")) + sorted(out.glob("*.env")))


def test_release_sources_match_the_data() -> None:
    text = (GOLDEN / "SOURCES.md").read_text()
    sections = {part.split("\n", 1)[0].strip(): part for part in text.split("\n## ")[1:]}
    data = releases.load().by_version()
    for release in RELEASES:
        section = sections[release]
        facts = data[release]
        assert f"`{facts.connectors['MooncakeConnectorV1'].source}`" in section, release
        assert f"`{facts.sources['mooncake_abort_timeout_env']}`" in section, release
        assert f"{facts.mooncake_abort_timeout_env}=600" in section, release


@pytest.mark.parametrize("case", CASES)
def test_scripts_are_executable_and_lint_clean(case: str, tmp_path: Path) -> None:
    render_deploy(load(case), tmp_path, f"{case}.yaml")
    scripts = sorted(tmp_path.glob("*.sh"))
    assert scripts
    for script in scripts:
        assert stat.S_IMODE(os.stat(script).st_mode) == 0o755
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in script.read_text()
        assert "generated, do not edit" in script.read_text()
    lint_scripts(scripts + sorted(tmp_path.glob("*.env")))


def test_seed_recipe_shape(tmp_path: Path) -> None:
    render_deploy(load("a3-seed"), tmp_path, "a3-seed.yaml")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    procs = {p["name"]: p for p in manifest["processes"]}
    assert list(procs) == ["prefill-0@node-p", "decode-0@node-d"]
    assert procs["prefill-0@node-p"]["serving"] == "api"
    assert manifest["proxy"]["host"] == "node-p"
    assert manifest["proxy"]["prefill"] == ["192.0.2.31:8100"]
    assert manifest["proxy"]["decode"] == ["192.0.2.32:8200"]
    prefill = (tmp_path / "prefill-0@node-p.sh").read_text()
    decode = (tmp_path / "decode-0@node-d.sh").read_text()
    assert "--enforce-eager" in prefill
    assert "--enforce-eager" not in decode
    assert '{"cudagraph_mode":"FULL_DECODE_ONLY","cudagraph_capture_sizes":[32]}' in decode
    assert "torchair" not in decode
    assert "--tensor-parallel-size 16" in prefill
    assert "--tensor-parallel-size 16" in decode


def test_check_detects_drift_and_is_clean_after_render(tmp_path: Path) -> None:
    spec = load("a2-1p1d-single")
    assert not check_deploy(spec, tmp_path, "s.yaml").ok
    render_deploy(spec, tmp_path, "s.yaml")
    assert check_deploy(spec, tmp_path, "s.yaml").ok
    script = tmp_path / "decode-0@node0.sh"
    script.write_text(script.read_text().replace("--port 8200", "--port 9999"))
    result = check_deploy(spec, tmp_path, "s.yaml")
    assert result.changed == ["decode-0@node0.sh"]
    assert "-  --port 9999" in result.diff
    assert "+  --port 8200" in result.diff
    os.chmod(tmp_path / "proxy@node0.sh", 0o644)
    render_deploy(spec, tmp_path, "s.yaml")
    os.chmod(tmp_path / "proxy@node0.sh", 0o644)
    assert check_deploy(spec, tmp_path, "s.yaml").changed == ["proxy@node0.sh"]


def test_rerender_removes_only_files_it_wrote(tmp_path: Path) -> None:
    render_deploy(load("a2-2p1d-dp"), tmp_path, "x.yaml")
    (tmp_path / "notes.txt").write_text("mine")
    result = render_deploy(load("a2-1p1d-single"), tmp_path, "y.yaml")
    assert "prefill-0@p0a.sh" in result.removed
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*result.files, "notes.txt"])
