"""doctor --html: the host x check grid shows the failing check in red, with its fix."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.screenshot import hex_rgb, screenshot

from ascend_pd.netcheck.html import COLOURS

SimFactory = Callable[..., tuple[Any, Path]]


def test_the_failing_check_is_a_red_grid_cell(sim_spec: SimFactory, tmp_path: Path) -> None:
    _, spec = sim_spec(faults=["hccn_conf_missing"])
    out = tmp_path / "doctor.html"
    proc = subprocess.run(
        [sys.executable, "-m", "ascend_pd", "doctor", "-c", str(spec), "--backend", "local",
         "--html", str(out)], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert f"HTML report: {out}" in proc.stdout
    html = out.read_text(encoding="utf-8")
    assert "hccn-conf" in html and "/etc/hccn.conf missing" in html
    image = screenshot(out, tmp_path)
    red = [run for run in image.runs(hex_rgb(COLOURS["fault"])) if run[2] >= 60]
    green = [run for run in image.runs(hex_rgb(COLOURS["pass"])) if run[2] >= 60]
    assert red, "the failing check's cell is not red in the screenshot"
    # One host row: the red cell sits on the same screen lines as the 13 green ones.
    assert {y for y, _x, _n in red} <= {y for y, _x, _n in green}
