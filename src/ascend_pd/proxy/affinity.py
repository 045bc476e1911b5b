"""The ``cache_aware`` prefill policy: send a prompt where its prefix was computed last.

vLLM's prefix cache keeps the KV of recently computed *full blocks*, keyed by a hash chain
over the block contents, so a request whose leading blocks an instance computed recently
only computes the rest. System prompts, multi-turn chats and agents repeat long prefixes;
spreading them by load alone makes every instance recompute every prefix.

Here a prompt becomes a chain of keys, one per leading block of ``BLOCK_CHARS`` characters
(about 128 tokens at the proxy's 4-characters-per-token estimate; a partial last block is
not a key, as vLLM caches full blocks only). Chat requests are keyed on their *rendered*
messages (role and content in order), so a conversation's earlier turns match. The table
remembers, per key, the backend that last computed it (bounded LRU of ``max_entries``).

Choosing: the candidate that would finish the prompt first -- its outstanding prompt tokens
plus the tokens it must compute for this one (the prompt less the blocks it holds). A cache
holder wins while its backlog exceeds the least-loaded backend's by less than its cache
saves; beyond that bound the request spills to the least-loaded backend (which then holds
the prefix too), so a hot prefix cannot overload one instance. vllm-router bounds its
cache_aware policy with fixed balance thresholds on request counts instead; here the bound
is in the unit the instances spend. No match anywhere: least loaded. The load charged is
the uncached part, so ``outstanding_prompt_tokens`` tracks work left, not prompt length.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ascend_pd.proxy.balancer import Backend

BLOCK_CHARS = 512
#: the proxy's estimate for a block (contract.estimate_prompt_tokens: characters / 4)
TOKENS_PER_BLOCK = BLOCK_CHARS // 4
TOKEN_IDS_PER_BLOCK = 128
MAX_BLOCKS = 256


def _render_chat(messages: Any) -> str:
    # Not the model's chat template (the proxy does not have it) -- but the same messages
    # always render the same, and a longer conversation starts with its shorter self.
    parts = []
    for m in messages if isinstance(messages, list) else ():
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"<|{m.get('role')}|>{content or ''}\n")
    return "".join(parts)


def prefix_keys(body: dict[str, Any]) -> tuple[int, ...]:
    """The hash chain of a request's leading full blocks (empty when it has none)."""
    if "messages" in body:
        chunks: Sequence[Any] = _text_blocks(_render_chat(body.get("messages")))
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt):
            n = min(len(prompt) // TOKEN_IDS_PER_BLOCK, MAX_BLOCKS)
            chunks = [tuple(prompt[i * TOKEN_IDS_PER_BLOCK:(i + 1) * TOKEN_IDS_PER_BLOCK])
                      for i in range(n)]
        elif isinstance(prompt, str):
            chunks = _text_blocks(prompt)
        else:  # several prompts in one request: no single prefix to follow
            return ()
    keys = []
    h = 0
    for chunk in chunks:
        h = hash((h, chunk))
        keys.append(h)
    return tuple(keys)


def prefill_keys(policy: str, body: dict[str, Any]) -> tuple[int, ...]:
    """The keys a prefill leg carries: the prefix chain under ``cache_aware``, else none (only
    that policy reads them, and hashing is a pass over the whole prompt). Both flows --
    prefill-first and decode-first -- pick their prefill through this."""
    return prefix_keys(body) if policy == "cache_aware" else ()


def _text_blocks(text: str) -> list[str]:
    n = min(len(text) // BLOCK_CHARS, MAX_BLOCKS)
    return [text[i * BLOCK_CHARS:(i + 1) * BLOCK_CHARS] for i in range(n)]


@dataclass
class PrefixAffinity:
    """Which backend last computed which prefix block (bounded), and the choice it implies."""

    max_entries: int = 65536
    table: OrderedDict[int, Backend] = field(default_factory=OrderedDict)
    hits: int = 0
    misses: int = 0
    overflows: int = 0

    def _matched(self, keys: Sequence[int], candidates: list[Backend]) -> dict[int, int]:
        """Leading blocks each candidate holds (by ``id``): a chain key implies the ones
        before it, so a backend holds up to the last key it owns."""
        allowed = set(map(id, candidates))
        out: dict[int, int] = {}
        for i, key in enumerate(keys):
            backend = self.table.get(key)
            if backend is not None and id(backend) in allowed:
                out[id(backend)] = i + 1
        return out

    def choose(self, candidates: list[Backend], keys: Sequence[int], least: Backend,
               tokens: int) -> tuple[Backend, int]:
        """Pick among ``candidates`` (``least``: the least-loaded one, ties rotated by the
        pool); remember the choice for ``keys``. Returns the backend and the prompt tokens
        it will have to compute (``tokens`` less its cached prefix): its load to charge."""
        matched = self._matched(keys, candidates) if keys else {}

        def work(b: Backend) -> int:
            return max(1, tokens - matched.get(id(b), 0) * TOKENS_PER_BLOCK) if tokens else 0

        if not matched:
            self.misses += 1
            chosen = least
        else:
            # The backend that finishes this prompt first: queued work plus what it must
            # compute. A cache holder wins while its backlog exceeds the least-loaded
            # backend's by less than the tokens its cache saves -- the bound that keeps one
            # hot prefix from piling onto one instance.
            chosen = min([least, *candidates], key=lambda b: b.load + work(b))
            if id(chosen) in matched:
                self.hits += 1
            else:
                self.overflows += 1
        self.remember(keys, chosen)
        return chosen, work(chosen)

    def remember(self, keys: Sequence[int], backend: Backend) -> None:
        table = self.table
        for key in keys:
            table[key] = backend
            table.move_to_end(key)
        while len(table) > self.max_entries:
            table.popitem(last=False)

    def forget(self, backend: Backend) -> None:
        """A backend left the pool: its prefixes are nowhere now."""
        for key in [k for k, b in self.table.items() if b is backend]:
            del self.table[key]
