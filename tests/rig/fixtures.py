"""pytest fixtures for the rig tier: skip with the exact reason, or fail under CI=true."""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator

import pytest

from tests.rig.netns import Rig, RigUnavailable, unavailable_reason

RIG_HOSTS = 3


def rig_unavailable(reason: str) -> None:
    """Skip (locally) or fail (CI=true: the rig tier must never be skipped in CI)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"rig tier cannot run but CI=true requires it: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """Three hosts (h1..h3) with sshd, torn down at the end of the session."""
    reason = unavailable_reason()
    if reason:
        rig_unavailable(reason)
    the_rig = Rig(tmp_path_factory.mktemp("rig"), RIG_HOSTS)
    # Also on interpreter exit, in case the session is interrupted before teardown.
    atexit.register(the_rig.close)
    try:
        the_rig.start()
    except RigUnavailable as exc:
        the_rig.close()
        rig_unavailable(str(exc))
    except BaseException:
        the_rig.close()
        raise
    try:
        yield the_rig
    finally:
        the_rig.close()
        atexit.unregister(the_rig.close)
