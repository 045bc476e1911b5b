"""The P->D request contract (vllm-ascend's example proxy) as pure functions over JSON.

Nothing here mutates the caller's body: every builder returns a new dict (a shallow copy;
nested objects the proxy changes are copied too), so a recompute never edits the messages
the client sent (the example proxy overwrote messages[0]).
"""

from __future__ import annotations

import copy
from typing import Any, Final

#: vLLM's default when a completions request has no max_tokens (also what HEAD assumes).
DEFAULT_MAX_TOKENS: Final[int] = 16
CHARS_PER_TOKEN: Final[int] = 4

PREFILL_KV_PARAMS: Final[dict[str, Any]] = {
    "do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
    "remote_block_ids": None, "remote_host": None, "remote_port": None,
}


def prefill_body(body: dict[str, Any]) -> dict[str, Any]:
    """The prefill leg: the client body, length-capped to one token, not streamed."""
    out = dict(body)
    out["kv_transfer_params"] = dict(PREFILL_KV_PARAMS)
    out["stream"] = False
    out["max_tokens"] = 1
    out["min_tokens"] = 1
    if "max_completion_tokens" in out:
        out["max_completion_tokens"] = 1
    out.pop("stream_options", None)
    return out


def decode_body(body: dict[str, Any], kv_params: dict[str, Any] | None) -> dict[str, Any]:
    """The decode leg: the client body plus the prefill's kv_transfer_params, unchanged
    (None: the connector passes KV another way, the body goes as the client sent it)."""
    out = dict(body)
    if kv_params is not None:
        out["kv_transfer_params"] = kv_params
    return out


def drain_body(body: dict[str, Any], kv_params: dict[str, Any]) -> dict[str, Any]:
    """A 1-token, non-streamed decode leg whose only purpose is to make P free its blocks."""
    out = prefill_body(body)
    out["kv_transfer_params"] = kv_params
    return out


def _text_len(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        # Only text parts: base64 images would inflate the estimate (the example scored bytes).
        return sum(len(str(p.get("text", ""))) for p in content
                   if isinstance(p, dict) and p.get("type") == "text")
    return 0


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens without a tokenizer: text characters / 4 (token-id prompts: exact)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        chars = sum(_text_len(m.get("content")) for m in messages if isinstance(m, dict))
        return max(1, chars // CHARS_PER_TOKEN)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if all(isinstance(x, int) for x in prompt):
            return max(1, len(prompt))
        return max(1, sum(len(str(p)) for p in prompt) // CHARS_PER_TOKEN)
    return max(1, len(str(prompt or "")) // CHARS_PER_TOKEN)


def requested_max_tokens(body: dict[str, Any]) -> int:
    """What the client asked for (max_completion_tokens wins, as in vLLM chat)."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_MAX_TOKENS


def wants_usage(body: dict[str, Any]) -> bool:
    """Whether a streaming client asked for usage events (``stream_options``)."""
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage")
                                              or options.get("continuous_usage_stats"))


def can_recompute(body: dict[str, Any]) -> bool:
    """A recompute continuation is only well defined for one choice of one text prompt."""
    if body.get("n", 1) not in (1, None):
        return False
    if "messages" in body:
        return isinstance(body.get("messages"), list)
    return isinstance(body.get("prompt"), str)


def continuation_body(body: dict[str, Any], generated: str, remaining: int) -> dict[str, Any]:
    """The request that continues after ``generated`` text, asking for ``remaining`` tokens.

    Completions: the prompt grows by the generated text. Chat: an assistant turn holding the
    generated text is appended and the server is asked to continue it
    (``continue_final_message``), leaving every message the client sent untouched.
    """
    out = dict(body)
    if "messages" in body:
        messages = list(body["messages"])
        last = messages[-1] if messages else None
        if (body.get("continue_final_message") and isinstance(last, dict)
                and last.get("role") == "assistant" and isinstance(last.get("content"), str)):
            merged = copy.copy(last)
            merged["content"] = last["content"] + generated
            messages[-1] = merged
        else:
            messages.append({"role": "assistant", "content": generated})
        out["messages"] = messages
        out["continue_final_message"] = True
        out["add_generation_prompt"] = False
    else:
        out["prompt"] = str(body.get("prompt", "")) + generated
    if "max_completion_tokens" in body:
        out["max_completion_tokens"] = remaining
    out["max_tokens"] = remaining
    return out
