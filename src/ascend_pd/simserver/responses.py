"""OpenAI/vLLM-shaped response bodies and SSE chunks for the simulated server.

Field order and presence follow vLLM's pydantic models (``stop_reason``, ``kv_transfer_params``
and ``prompt_logprobs`` are vLLM extensions); JSON is compact like pydantic's
``model_dump_json``.
"""

from __future__ import annotations

import json
from typing import Any

_COMPACT = (",", ":")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=_COMPACT).encode()


def error_body(message: str, err_type: str, code: int) -> bytes:
    """vLLM's error envelope (``{"error": {...}}``)."""
    return dumps({"error": {"message": message, "type": err_type, "param": None, "code": code}})


def usage(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    details = None if cached is None else {"cached_tokens": cached}
    return {"prompt_tokens": prompt, "total_tokens": prompt + completion,
            "completion_tokens": completion, "prompt_tokens_details": details}


def full_response(
    *, chat: bool, rid: str, created: int, model: str, text: str, finish: str,
    stop_reason: str | None, prompt_tokens: int, completion_tokens: int,
    kv_params: dict[str, Any] | None, cached_tokens: int | None = None,
) -> bytes:
    """A non-streaming completion (or chat completion) body."""
    if chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "tool_calls": []},
            "logprobs": None, "finish_reason": finish, "stop_reason": stop_reason,
        }
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish,
                  "stop_reason": stop_reason, "prompt_logprobs": None}
        obj = "text_completion"
    return dumps({
        "id": rid, "object": obj, "created": created, "model": model, "choices": [choice],
        "usage": usage(prompt_tokens, completion_tokens, cached_tokens), "prompt_logprobs": None,
        "kv_transfer_params": kv_params,
    })


def chunk(
    *, chat: bool, rid: str, created: int, model: str, text: str | None,
    finish: str | None = None, stop_reason: str | None = None, role: bool = False,
) -> bytes:
    """One SSE event (``data: {...}\\n\\n``) of a streaming response."""
    if chat:
        delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
        if text is not None:
            delta["content"] = text
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                  "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        obj = "text_completion"
    if finish is not None:
        choice["stop_reason"] = stop_reason
    return b"data: " + dumps({"id": rid, "object": obj, "created": created, "model": model,
                              "choices": [choice]}) + b"\n\n"


def usage_chunk(*, chat: bool, rid: str, created: int, model: str, prompt_tokens: int,
                completion_tokens: int, cached_tokens: int | None = None) -> bytes:
    """The final ``choices: []`` event carrying usage (``stream_options.include_usage``)."""
    obj = "chat.completion.chunk" if chat else "text_completion"
    return b"data: " + dumps({"id": rid, "object": obj, "created": created, "model": model,
                              "choices": [],
                              "usage": usage(prompt_tokens, completion_tokens, cached_tokens)}
                             ) + b"\n\n"


DONE = b"data: [DONE]\n\n"


def bad_answer(kind: str | None) -> tuple[bytes, dict[str, str]] | None:
    """A broken 200 (body, extra headers) for ``--bad-answer``; None for none or ``no_done``
    (a streaming fault the generator applies)."""
    if kind == "empty":
        return b"", {}
    if kind == "garbage":
        return b"<html>502 Bad Gateway</html>", {}
    if kind == "huge_header":
        return b"{}", {"X-Huge": "a" * 100_000}
    return None


def metrics_text(model: str, role: str, rows: list[tuple[str, str, int]]) -> str:
    """Prometheus text exposition of ``(name, type, value)`` rows, vLLM's labels."""
    label = f'{{model_name="{model}",role="{role}"}}'
    return "".join(f"# TYPE {name} {kind}\n{name}{label} {value}\n"
                   for name, kind, value in rows)
