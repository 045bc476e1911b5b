"""Shared fixtures. The multi-host rig (network namespaces + sshd) lives in tests/rig/."""

from __future__ import annotations

from tests.rig.fixtures import rig

__all__ = ["rig"]
