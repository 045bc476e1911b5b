"""Shared fixtures: a clean environment for every test; the multi-host rig (network
namespaces + sshd) lives in tests/rig/."""

from __future__ import annotations

import pytest

from tests.rig.fixtures import rig

__all__ = ["rig"]


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep the developer's settings (and a real cluster) out of every test.
    for var in ("ASCEND_PD_BACKEND", "ASCEND_PD_CONFIG", "HCCN_TOOL_PATH",
                "ASCEND_PD_SIM_CLUSTER", "ASCEND_PD_SIM_HOST"):
        monkeypatch.delenv(var, raising=False)
