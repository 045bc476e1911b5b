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

Choosing: the backend holding the longest matched chain wins -- unless that would overload
it: when its load exceeds the least-loaded candidate's by more than ``balance_abs`` prompt
tokens *and* by a factor ``balance_rel`` (vllm-router's ``balance_abs_threshold`` /
``balance_rel_threshold`` idea, on outstanding prompt tokens), the least-loaded backend
takes the request instead. No match: least loaded. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ascend_pd.proxy.balancer import Backend

BLOCK_CHARS = 512
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


def _text_blocks(text: str) -> list[str]:
    n = min(len(text) // BLOCK_CHARS, MAX_BLOCKS)
    return [text[i * BLOCK_CHARS:(i + 1) * BLOCK_CHARS] for i in range(n)]


@dataclass
class PrefixAffinity:
    """Which backend last computed which prefix block, bounded."""

    max_entries: int = 65536
    balance_abs: int = 4096
    balance_rel: float = 1.5
    table: OrderedDict[int, Backend] = field(default_factory=OrderedDict)
    hits: int = 0
    misses: int = 0
    overflows: int = 0

    def _match(self, keys: Sequence[int], candidates: list[Backend]) -> Backend | None:
        allowed = set(map(id, candidates))
        # Longest chain first: walk back from the last key.
        for key in reversed(keys):
            backend = self.table.get(key)
            if backend is not None and id(backend) in allowed:
                return backend
        return None

    def choose(self, candidates: list[Backend], keys: Sequence[int], least: Backend,
               ) -> Backend:
        """Pick among ``candidates`` (``least``: the least-loaded one, ties rotated by the
        pool) and remember the choice for ``keys``."""
        chosen = self._match(keys, candidates) if keys else None
        if chosen is None:
            self.misses += 1
            chosen = least
        elif (chosen.load - least.load > self.balance_abs
              and chosen.load > self.balance_rel * least.load):
            self.overflows += 1
            chosen = least
        else:
            self.hits += 1
        self.remember(keys, chosen)
        return chosen

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
