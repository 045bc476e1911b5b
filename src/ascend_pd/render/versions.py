"""vllm-ascend version numbers and the version-dependent facts the renderer and checks need.

Tags look like ``v0.9.1``, ``0.10.0rc1`` or ``0.11.0rc0``; a release candidate sorts before
its final release. Each fact below is dated by vllm-ascend's
release notes (docs/source/user_guide/release_notes.md) and vllm_ascend/distributed/ history.
"""

from __future__ import annotations

import re
from functools import total_ordering
from typing import Final

from ascend_pd.errors import SpecError

_VERSION_RE: Final = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:rc(\d+))?$")


@total_ordering
class Version:
    """A comparable vllm-ascend version (``0.10.0rc1 < 0.10.0 < 0.10.1rc1``).

    Args:
        text: the version as written in the spec, with or without a leading ``v``.

    Raises:
        SpecError: the text is not ``MAJOR.MINOR[.PATCH][rcN]``.
    """

    __slots__ = ("_key", "text")

    def __init__(self, text: str) -> None:
        match = _VERSION_RE.match(text.strip())
        if match is None:
            raise SpecError(
                f"vllm-ascend version '{text}' is not MAJOR.MINOR.PATCH[rcN]",
                hint="write it like the release tag, e.g. \"0.11.0\" or \"0.10.1rc1\"",
            )
        major, minor, patch, rc = match.groups()
        # A final release sorts after all of its release candidates.
        stage = (0, int(rc)) if rc is not None else (1, 0)
        self._key = (int(major), int(minor), int(patch or 0), *stage)
        self.text = text.strip()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = Version(other)
        return isinstance(other, Version) and self._key == other._key

    def __lt__(self, other: Version | str) -> bool:
        if isinstance(other, str):
            other = Version(other)
        return self._key < other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Version({self.text!r})"


#: LLMDataDistCMgrConnector (V1) first shipped here and was removed in 0.12.0rc1.
LLMDD_FIRST: Final = "0.9.1rc2"
LLMDD_REMOVED: Final = "0.12.0rc1"
#: MooncakeConnectorV1 first shipped here.
MOONCAKE_FIRST: Final = "0.10.1rc1"
#: PR #2450 renamed VLLM_LLMDD_RPC_PORT; the first tag reading the new name.
RPC_RENAMED: Final = "0.10.1rc1"
#: PR #2174 (P-side abort timeout for LLMDataDist on main) first tag.
NIXL_ABORT_FIRST: Final = "0.11.0rc0"
#: `use_ascend_direct` exists on 0.11.x only (removed by PR #4547 in 0.12.0rc1).
ASCEND_DIRECT_FIRST: Final = "0.11.0rc0"
ASCEND_DIRECT_REMOVED: Final = "0.12.0rc1"
#: VLLM_USE_V1 stopped meaning anything after PR #4086.
USE_V1_REMOVED: Final = "0.12.0rc1"

OLD_RPC_ENV: Final = "VLLM_LLMDD_RPC_PORT"
NEW_RPC_ENV: Final = "VLLM_ASCEND_LLMDD_RPC_PORT"


def connector_supported(connector: str, version: Version) -> bool:
    """Whether ``version`` ships the connector type (``llmdatadist`` | ``mooncake``)."""
    if connector == "llmdatadist":
        return Version(LLMDD_FIRST) <= version < Version(LLMDD_REMOVED)
    return version >= Version(MOONCAKE_FIRST)


def rpc_port_env(version: Version) -> str:
    """The LLMDataDist metadata-port variable this version reads (the other is ignored)."""
    return OLD_RPC_ENV if version < Version(RPC_RENAMED) else NEW_RPC_ENV


def abort_timeout_env(connector: str, version: Version) -> tuple[str, int] | None:
    """(variable, default seconds) of the P-side KV abort timeout, or None when absent.

    LLMDataDist on 0.10.0rc1…0.10.2rc1 had no P-side expiry at all (blocks leak forever).
    """
    if connector == "mooncake":
        return "VLLM_MOONCAKE_ABORT_REQUEST_TIMEOUT", 480
    if version < Version("0.10.0rc1"):
        return "VLLM_LLMDD_ABORT_REQUEST_TIMEOUT", 120
    if version < Version(NIXL_ABORT_FIRST):
        return None
    return "VLLM_NIXL_ABORT_REQUEST_TIMEOUT", 480


def needs_ascend_direct(version: Version) -> bool:
    """Mooncake on 0.11.x must be told ``use_ascend_direct: true``; later versions reject it."""
    return Version(ASCEND_DIRECT_FIRST) <= version < Version(ASCEND_DIRECT_REMOVED)
