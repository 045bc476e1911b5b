"""check-links --html: one self-contained page whose picture shows the failing device."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.netcheck.html import COLOURS, DEVICE_CELL
from ascend_pd.sim.faults import apply_fault
from tests.screenshot import Image, hex_rgb, screenshot

FAULT, PASS = hex_rgb(COLOURS["fault"]), hex_rgb(COLOURS["pass"])


def _report(spec: Path, out: Path) -> str:
    result = CliRunner().invoke(cli, ["check-links", "-c", str(spec), "--html", str(out)])
    assert f"HTML report: {out}" in result.output
    return out.read_text(encoding="utf-8")


def _device_cells(image: Image) -> dict[int, list[tuple[int, tuple[int, int, int]]]]:
    """Device-map cells by screen row: y -> [(x, colour)], from their full-width top edge."""
    rows: dict[int, list[tuple[int, tuple[int, int, int]]]] = {}
    for colour in (FAULT, PASS):
        for y, x, length in image.runs(colour):
            if length == DEVICE_CELL:
                rows.setdefault(y, []).append((x, colour))
    return {y: sorted(cells) for y, cells in rows.items() if len(cells) == 8}


def test_the_injected_tls_fault_is_the_red_device_in_the_screenshot(
    a2: tuple[Path, Path], tmp_path: Path
) -> None:
    spec, cluster = a2
    apply_fault(cluster, "node-d", "tls-on", device=3)
    html = _report(spec, tmp_path / "report.html")
    image = screenshot(tmp_path / "report.html", tmp_path)
    rows = _device_cells(image)
    # Two host rows of 8 devices (each row seen on every pixel line of the cells' height):
    # node-p all green; node-d green but device 3 red.
    colours = {tuple(c for _x, c in cells) for cells in rows.values()}
    assert colours == {(PASS,) * 8, (PASS,) * 3 + (FAULT,) + (PASS,) * 4}
    node_d_top = min(y for y, cells in rows.items() if FAULT in (c for _x, c in cells))
    node_p_top = min(rows)
    assert node_p_top < node_d_top  # report order: prefill host first
    # The host x check grid shows node-d's tls cell red too, and the fix is printed.
    assert any(length > DEVICE_CELL for _y, _x, length in image.runs(FAULT))
    assert "hccn_tool -i 3 -tls -s enable 0" in html


def test_a_healthy_cluster_has_no_red_and_the_page_needs_no_network(
    a2: tuple[Path, Path], tmp_path: Path
) -> None:
    spec, _cluster = a2
    html = _report(spec, tmp_path / "report.html")
    image = screenshot(tmp_path / "report.html", tmp_path)
    # Only the legend's 14-px swatch is red: no grid cell, no device.
    assert {length for _y, _x, length in image.runs(FAULT)} == {14}
    # Down the left edge of the first device column (no digits there): one green square
    # per host, i.e. two vertical runs of a cell's height.
    x0 = min(x for cells in _device_cells(image).values() for x, _c in cells) + 1
    column = [row[x0] for row in image.rows]
    squares = [len(list(run)) for colour, run in itertools.groupby(column) if colour == PASS]
    assert [n for n in squares if n == DEVICE_CELL] == [DEVICE_CELL, DEVICE_CELL]
    # Self-contained: no script, no external stylesheet, image, font or link.
    assert not re.search(r"<script|<link|<img|src=|href=|url\(|@import", html)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []
