"""Render an HTML file in headless Chromium and read the screenshot's pixels back.

``screenshot(html, tmp)`` returns a :class:`Image`; tests assert on what is visible (the
exact fill colours of netcheck.html.COLOURS), not only on the HTML text. The PNG reader
is the few lines a Chromium screenshot needs (8-bit RGB/RGBA, not interlaced), so the dev
extras need no imaging library.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    #: rows of (r, g, b) tuples
    rows: list[list[tuple[int, int, int]]]

    def runs(self, colour: tuple[int, int, int]) -> list[tuple[int, int, int]]:
        """Horizontal runs of exactly ``colour``: (y, x start, length)."""
        out = []
        for y, row in enumerate(self.rows):
            x = 0
            while x < self.width:
                if row[x] == colour:
                    start = x
                    while x < self.width and row[x] == colour:
                        x += 1
                    out.append((y, start, x - start))
                else:
                    x += 1
        return out


def hex_rgb(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(data: bytes) -> Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = depth = ctype = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    assert depth == 8 and ctype in (2, 6) and not interlace, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, rows, i = bytearray(stride), [], 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up, corner = prev[x], prev[x - bpp] if x >= bpp else 0
            add = (0, left, up, (left + up) // 2, _paeth(left, up, corner))[kind]
            line[x] = (line[x] + add) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return Image(width, height, rows)  # type: ignore[arg-type]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing; scripts/bootstrap installs it (apt)")
        pytest.skip("chromium is not installed (scripts/bootstrap installs it as root)")
    return found


def screenshot(html: Path, tmp: Path, size: tuple[int, int] = (1200, 1400)) -> Image:
    """Load ``html`` from disk (file://, no server) and screenshot it."""
    png = tmp / "shot.png"
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'chromium'}",
                    f"--screenshot={png}", f"--window-size={size[0]},{size[1]}",
                    html.absolute().as_uri()],
                   check=True, capture_output=True, timeout=120)
    return read_png(png.read_bytes())
