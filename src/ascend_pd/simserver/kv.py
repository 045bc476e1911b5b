"""The prefill side's KV block ledger: blocks held for a remote decode until pulled or expired.

This models llmdatadist_c_mgr_connector.py's "delay free" behaviour: after a prefill that
finished length-capped with ``do_remote_decode``, P keeps the request's blocks until D
reports it pulled them, or until the abort timeout expires and P force-frees them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger("ascend_pd.simserver.kv")

BLOCK_SIZE: Final[int] = 128


@dataclass
class Held:
    block_ids: list[int]
    expires_at: float
    #: what the blocks were computed from: a decode that pulls them generates from it, so a
    #: decode fed another prompt's KV answers visibly wrong, as real vLLM would
    seed: str = ""


@dataclass
class KvLedger:
    """Blocks held per remote request id; ``clock`` is injectable for tests."""

    abort_timeout_s: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    held: dict[str, Held] = field(default_factory=dict)
    next_block: int = 0
    pulled_total: int = 0
    force_freed_total: int = 0

    def _now(self) -> float:
        return self.clock()

    @property
    def held_blocks(self) -> int:
        return sum(len(h.block_ids) for h in self.held.values())

    def hold(self, request_id: str, prompt_tokens: int, seed: str = "",
             ) -> tuple[str, list[int]]:
        """Allocate blocks for a prompt and hold them; returns the (unique) id and block ids."""
        key = request_id
        n = 1
        while key in self.held:  # a client reusing an X-Request-Id must not clobber blocks
            n += 1
            key = f"{request_id}#{n}"
        count = max(1, -(-prompt_tokens // BLOCK_SIZE))
        blocks = list(range(self.next_block, self.next_block + count))
        self.next_block += count
        self.held[key] = Held(blocks, self._now() + self.abort_timeout_s, seed)
        log.info("Delaying free of %d blocks for request %s", count, key)
        return key, blocks

    def pull(self, request_id: str, block_ids: list[int]) -> Held | None:
        """A decode pulled the blocks: free them. None when they are not held (any more)."""
        held = self.held.get(request_id)
        if held is None or held.block_ids != block_ids:
            return None
        del self.held[request_id]
        self.pulled_total += 1
        return held

    def expire(self) -> int:
        """Force-free every request past its abort timeout; returns how many were freed."""
        now = self._now()
        expired = [rid for rid, h in self.held.items() if h.expires_at <= now]
        for rid in expired:
            blocks = self.held.pop(rid).block_ids
            self.force_freed_total += 1
            log.warning(
                "Force freed expired request %s (%d blocks) after %.0f s without a decode pull",
                rid, len(blocks), self.abort_timeout_s,
            )
        return len(expired)
