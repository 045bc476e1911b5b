"""Multi-host test rig: network namespaces on a bridge, a real sshd in each (needs root)."""

from __future__ import annotations

from tests.rig.netns import Rig, RigHost, RigUnavailable, cleanup_stale, unavailable_reason

__all__ = ["Rig", "RigHost", "RigUnavailable", "cleanup_stale", "unavailable_reason"]
