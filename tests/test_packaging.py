"""The wheel carries templates/ and ranktable/ and works away from the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_data_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr
    [wheel] = tmp_path.glob("ascend_pd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("ascend_pd/_data/templates/launch.sh.j2",
                   "ascend_pd/_data/templates/specs/a2-1p1d.yaml",
                   "ascend_pd/_data/ranktable/schema.json",
                   "ascend_pd/diagnose/catalogue.yaml",
                   "ascend_pd/py.typed"):
        assert needed in names, needed
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)], capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import ascend_pd.resources as r, ascend_pd.cli as c; "
            "print(r.data_dir('templates')); print(c.__file__)")
    probe = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines()[0].startswith(str(target))
    helped = subprocess.run([sys.executable, "-m", "ascend_pd", "init", "--shape", "a3-seed"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert helped.returncode == 0, helped.stderr
    assert "hardware: a3" in helped.stdout
