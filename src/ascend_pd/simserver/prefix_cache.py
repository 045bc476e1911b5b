"""The simulated prefill's prefix cache and compute lanes: what makes routing measurable.

vLLM (``--enable-prefix-caching``, on by default in V1) keeps the KV of computed full blocks
keyed by a hash chain over the block's tokens and the chain before it; a new prompt whose
leading blocks are cached computes only the rest. Here: the prompt's tokens (``tokens.
pieces``) cut into blocks of ``BLOCK_SIZE``, chained hashes, an LRU of at most
``capacity_blocks`` entries. ``lookup`` says how many leading tokens are cached; ``insert``
records the prompt's blocks (evicting the least recently used).

``ComputeLanes`` serialises prefill compute: with ``lanes`` = 1 an instance computes one
prompt at a time (FIFO), so routing many prompts to one instance costs queueing time, as on
a saturated NPU. ``lanes`` = 0 keeps the old behaviour (every prefill sleeps concurrently).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ascend_pd.simserver.kv import BLOCK_SIZE


def block_hashes(tokens: Sequence[str]) -> list[int]:
    """The hash chain of the full blocks of ``tokens``."""
    out = []
    h = 0
    for i in range(len(tokens) // BLOCK_SIZE):
        h = hash((h, tuple(tokens[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE])))
        out.append(h)
    return out


@dataclass
class PrefixCache:
    """LRU of computed block hashes (0 capacity: disabled)."""

    capacity_blocks: int
    blocks: OrderedDict[int, None] = field(default_factory=OrderedDict)
    hit_tokens_total: int = 0
    computed_tokens_total: int = 0

    def lookup(self, hashes: Sequence[int]) -> int:
        """Tokens of the longest cached leading run of blocks (touched as recently used)."""
        n = 0
        for h in hashes:
            if h not in self.blocks:
                break
            self.blocks.move_to_end(h)
            n += 1
        return n * BLOCK_SIZE

    def insert(self, hashes: Sequence[int]) -> None:
        if not self.capacity_blocks:
            return
        for h in hashes:
            self.blocks[h] = None
            self.blocks.move_to_end(h)
        while len(self.blocks) > self.capacity_blocks:
            self.blocks.popitem(last=False)

    def account(self, prompt_tokens: int, cached: int) -> None:
        self.hit_tokens_total += cached
        self.computed_tokens_total += prompt_tokens - cached


class ComputeLanes:
    """At most ``lanes`` prefills compute at once, FIFO (0: unbounded)."""

    def __init__(self, lanes: int) -> None:
        self._sem = asyncio.Semaphore(lanes) if lanes > 0 else None

    async def run(self, seconds: float) -> None:
        if self._sem is None:
            await asyncio.sleep(seconds)
            return
        async with self._sem:
            await asyncio.sleep(seconds)
