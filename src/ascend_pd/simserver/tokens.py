"""A deterministic fake tokenizer and text generator for the simulated vLLM server.

Real token counts do not matter to the simulator; *stable* ones do: the proxy balances on
prompt length and re-prefills ``prompt + generated text`` on a recompute, so the same text
must always count the same. A token here is a whitespace-separated word cut into 4-character
pieces, and every generated token is a short word with a leading space, so re-tokenizing the
generated text gives back exactly the number of tokens generated.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

PIECE: Final[int] = 4
# Short words (<= 4 chars) so one generated token is one counted token.
VOCAB: Final[tuple[str, ...]] = (
    "the", "npu", "kv", "fast", "dies", "link", "roce", "hccl", "p", "d", "tp", "dp", "ok",
    "warm", "pool", "node", "pod", "rank", "ping", "tls", "lane", "port", "vnic", "ring",
)
#: per-message overhead of the fake chat template
CHAT_MESSAGE_OVERHEAD: Final[int] = 3


def pieces(text: str) -> list[str]:
    """The tokens of ``text``, as ``count_text`` counts them (for the prefix cache)."""
    return [word[i:i + PIECE] for word in text.split() for i in range(0, len(word), PIECE)]


def count_text(text: str) -> int:
    """Tokens in ``text``: each whitespace word counts ceil(len/4)."""
    return sum(-(-len(word) // PIECE) for word in text.split())


def _content_text(content: Any) -> str:
    # Chat content is a string or a list of parts; only text parts carry tokens here
    # (an image part would be counted by the vision encoder, which the sim does not model).
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def prompt_text(body: dict[str, Any]) -> str:
    """The prompt as one string: ``prompt`` for completions, the message texts for chat."""
    if "messages" in body:
        messages = body.get("messages") or []
        return "\n".join(
            _content_text(m.get("content")) for m in messages if isinstance(m, dict)
        )
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        if prompt and all(isinstance(x, int) for x in prompt):
            return " ".join("x" for _ in prompt)
        return " ".join(str(p) for p in prompt)
    return str(prompt)


def count_prompt(body: dict[str, Any]) -> int:
    """Prompt tokens of a completions or chat body (token-id prompts count one per id)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt):
        return len(prompt)
    tokens = count_text(prompt_text(body))
    if "messages" in body:
        tokens += CHAT_MESSAGE_OVERHEAD * len(body.get("messages") or [])
    return max(tokens, 1)


def generated_tokens(seed_text: str, start: int, count: int) -> list[str]:
    """``count`` generated tokens, continuing at position ``start`` of a stream seeded by text."""
    base = zlib.crc32(seed_text.encode("utf-8", "replace"))
    return [" " + VOCAB[(base + 7 * i) % len(VOCAB)] for i in range(start, start + count)]
