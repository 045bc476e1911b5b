"""Relaying a decode's SSE stream to the client, and recompute bookkeeping.

Fast path: bytes are written as they arrive. When a recompute continuation is possible the
pump forwards whole events only (up to the last ``\\n\\n`` received) so that the event
carrying ``stop_reason: "recomputed"`` can be held back; JSON is parsed only for blocks that
contain that marker. The relayed bytes are still exactly the decode's bytes.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ascend_pd.proxy.upstream import UpstreamError, UpstreamResponse

SSE_TYPE = "text/event-stream; charset=utf-8"
MARKER = b"recomputed"
DONE_EVENT = b"data: [DONE]\n\n"
USAGE = b'"usage"'


def prompt_cached_tokens(answer: dict[str, Any] | None) -> int:
    """``usage.prompt_tokens_details.cached_tokens`` of a (prefill) answer; 0 when absent
    (as upstream's ``extract_cached_tokens`` in vllm-ascend's 0.30 proxy example)."""
    usage = (answer or {}).get("usage")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return cached if isinstance(cached, int) else 0


def set_cached_tokens(answer: dict[str, Any], cached: int) -> bool:
    """Write the prefill's cached tokens into an answer's usage; False without usage.

    The decode's own count means nothing in P/D: its prompt came from P's KV."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return False
    details = usage.get("prompt_tokens_details")
    usage["prompt_tokens_details"] = {**(details if isinstance(details, dict) else {}),
                                      "cached_tokens": cached}
    return True


def with_cached_tokens_sse(block: bytes, cached: int) -> bytes:
    """The SSE events of ``block`` with the cached tokens written into those with usage."""
    out = []
    for event in _events(block):
        data = _event_json(event) if USAGE in event else None
        if data is not None and set_cached_tokens(data, cached):
            event = b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
        out.append(event)
    return b"".join(out)


class UpstreamBroken(Exception):
    """Reading the decode's stream failed (it died, reset, or went silent too long)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(repr(cause))
        self.cause = cause


def _events(block: bytes) -> list[bytes]:
    return [e + b"\n\n" for e in block.split(b"\n\n") if e]


def _event_json(event: bytes) -> dict[str, Any] | None:
    line = event.strip()
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _recomputed_index(events: list[bytes]) -> int | None:
    for index, event in enumerate(events):
        data = _event_json(event) if MARKER in event else None
        choices = (data or {}).get("choices") or []
        if choices and choices[0].get("stop_reason") == "recomputed":
            return index
    return None


def _choice_text(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return str(delta.get("content") or "")
    return str(choice.get("text") or "")


def recomputed_choice(data: bytes) -> dict[str, Any] | None:
    """The first choice of a non-streamed answer if it stopped with ``recomputed``."""
    if MARKER not in data:
        return None
    try:
        parsed = json.loads(data)
        choice = parsed["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return choice if choice.get("stop_reason") == "recomputed" else None


def merge_recomputed(parts: list[dict[str, Any]], *, chat: bool) -> dict[str, Any]:
    """One answer from the rounds of a recomputed request: texts joined, tokens summed."""
    merged = dict(parts[-1])
    texts = []
    for part in parts:
        choice = part["choices"][0]
        texts.append((choice.get("message") or {}).get("content") if chat
                     else choice.get("text"))
    choice = dict(parts[-1]["choices"][0])
    text = "".join(t or "" for t in texts)
    if chat:
        choice["message"] = {**(choice.get("message") or {}), "content": text}
    else:
        choice["text"] = text
    merged["choices"] = [choice]
    completion = sum(int((p.get("usage") or {}).get("completion_tokens") or 0) for p in parts)
    prompt = int((parts[0].get("usage") or {}).get("prompt_tokens") or 0)
    merged["usage"] = {**(parts[-1].get("usage") or {}), "prompt_tokens": prompt,
                       "completion_tokens": completion, "total_tokens": prompt + completion}
    return merged


class StreamPump:
    """The client's streaming response, fed by one or more decode legs (recompute rounds)."""

    def __init__(self, request: web.Request, first_upstream: UpstreamResponse,
                 request_id: str, may_recompute: bool) -> None:
        self.request = request
        content_type = first_upstream.headers.get("content-type", SSE_TYPE)
        self.response = web.StreamResponse(
            status=first_upstream.status,
            headers={"Content-Type": content_type, "X-Request-Id": request_id})
        self.may_recompute = may_recompute
        #: prefill's usage.prompt_tokens_details.cached_tokens, written into the stream's
        #: usage events (set when the client asked for usage, and P reported it)
        self.cached_tokens: int | None = None
        #: the relayed stream's last bytes: a vLLM stream that ended well ends with [DONE]
        self.sse = content_type.startswith("text/event-stream")
        self.tail = b""
        #: text and tokens generated by earlier rounds (for the continuation request)
        self.generated_text = ""
        self.generated_tokens = 0

    async def start(self) -> None:
        await self.response.prepare(self.request)

    @staticmethod
    async def _read(upstream: UpstreamResponse) -> bytes:
        try:
            return await upstream.readany()
        except UpstreamError as exc:
            raise UpstreamBroken(exc) from exc

    async def relay(self, upstream: UpstreamResponse, first: bytes, *,
                    allow_recompute: bool) -> tuple[str, int] | None:
        """Forward one decode leg to the client.

        Returns None when the leg ended (the client has everything), or the cumulative
        (generated text, generated tokens) when it stopped with ``recomputed`` and the
        caller should continue with a re-prefill. Raises UpstreamBroken when the decode fails.
        """
        write = self._write
        data = first
        if not allow_recompute and self.cached_tokens is None:
            while data:
                await write(data)
                data = await self._read(upstream)
            return None
        pending = b""
        sent: list[bytes] = []
        while data:
            pending += data
            cut = pending.rfind(b"\n\n")
            if cut >= 0:
                block, pending = pending[:cut + 2], pending[cut + 2:]
                if self.cached_tokens is not None and USAGE in block:
                    block = with_cached_tokens_sse(block, self.cached_tokens)
                if MARKER in block and allow_recompute:
                    result = await self._maybe_recompute(block, sent, upstream)
                    if result is not None:
                        return result
                else:
                    await write(block)
                    sent.append(block)
            data = await self._read(upstream)
        if pending:
            await write(pending)
        return None

    async def _write(self, data: bytes) -> None:
        await self.response.write(data)
        self.tail = (self.tail + data)[-len(DONE_EVENT):] if len(data) < len(DONE_EVENT) \
            else data[-len(DONE_EVENT):]

    @property
    def complete(self) -> bool:
        """Whether the client got a whole stream: one ending with ``data: [DONE]``."""
        return not self.sse or self.tail.rstrip(b"\r\n") == DONE_EVENT.rstrip(b"\n")

    async def _maybe_recompute(self, block: bytes, sent: list[bytes],
                               upstream: UpstreamResponse) -> tuple[str, int] | None:
        events = _events(block)
        index = _recomputed_index(events)
        if index is None:
            await self._write(block)
            sent.append(block)
            return None
        before = b"".join(events[:index])
        if before:
            await self._write(before)
            sent.append(before)
        held = _event_json(events[index]) or {}
        choice = held["choices"][0]
        if _choice_text(choice):
            # The held-back event carries the round's last token: send it as a plain delta.
            choice["finish_reason"] = None
            choice.pop("stop_reason", None)
            await self._write(
                b"data: " + json.dumps(held, separators=(",", ":")).encode() + b"\n\n")
        # Hold back the recomputed event; read this leg to its end for its usage, if any.
        tail = b"".join(events[index + 1:])
        while chunk := await self._read(upstream):
            tail += chunk
        texts, content_events = [], 0
        for event in [*_events(b"".join(sent)), events[index]]:
            parsed = _event_json(event)
            for choice in (parsed or {}).get("choices") or []:
                text = _choice_text(choice)
                texts.append(text)
                content_events += bool(text)
        tokens = content_events  # fallback: one token per content event
        for event in _events(tail):
            usage = (_event_json(event) or {}).get("usage")
            if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
                tokens = int(usage["completion_tokens"])
        self.generated_text += "".join(texts)
        self.generated_tokens += tokens
        return self.generated_text, self.generated_tokens

    async def fail(self, message: str) -> None:
        """End the client stream with an SSE error event and no ``[DONE]``."""
        event = json.dumps({"error": {"message": message, "type": "BadGatewayError",
                                      "param": None, "code": 502}})
        try:
            await self.response.write(f"data: {event}\n\n".encode())
            await self.response.write_eof()
        except ConnectionResetError:
            pass  # the client left as well

    async def finish(self) -> None:
        await self.response.write_eof()
