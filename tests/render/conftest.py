"""Fixtures of the render tests: spec loading, the --update-golden switch, script linters."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ascend_pd.examples import example_spec, shapes
from ascend_pd.spec import ClusterSpec, parse_spec

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "golden" / "render"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="Rewrite tests/golden/render/ from the current renderer output.")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def spec_text(name: str) -> str:
    """Text of a shipped example (as `init` writes it) or a test spec (tests/render/specs)."""
    if name in shapes():
        return example_spec(name)
    path = HERE / "specs" / f"{name}.yaml"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise FileNotFoundError(name)


def load(name: str) -> ClusterSpec:
    return parse_spec(spec_text(name), f"{name}.yaml")


def edited(name: str, edit: Callable[[dict[str, Any]], None]) -> ClusterSpec:
    """Spec ``name`` after ``edit`` mutated its YAML data."""
    data = yaml.safe_load(spec_text(name))
    edit(data)
    return parse_spec(yaml.safe_dump(data, sort_keys=False), f"{name}.yaml (edited)")


def shellcheck_or_skip() -> str:
    """Path of shellcheck; skips locally when missing, fails under CI=true."""
    path = shutil.which("shellcheck")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shellcheck is required in CI (scripts/bootstrap installs it)")
        pytest.skip("shellcheck not installed (scripts/bootstrap installs it as root)")
    return path


def lint_scripts(paths: list[Path]) -> None:
    """Every rendered script passes `bash -n` and shellcheck."""
    shellcheck = shellcheck_or_skip()
    for path in paths:
        syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True,
                                timeout=10, check=False)
        assert syntax.returncode == 0, f"{path.name}: {syntax.stderr}"
    lint = subprocess.run([shellcheck, "--severity=style", *map(str, paths)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
