"""Fixtures for the diagnose tests: a clean environment and the sample log directory."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "diagnose"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep the developer's backend / spec / sysroot settings out of these tests.
    for var in ("ASCEND_PD_BACKEND", "ASCEND_PD_CONFIG", "ASCEND_PD_SYSROOT"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def data_dir() -> Path:
    return DATA
