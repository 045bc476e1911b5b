"""Fault-injection traffic for the proxy: what a bad day in production looks like, seeded.

``soak(proxy_url, ...)`` sends a mix of completions and chat requests, streamed or not, with
random ``max_tokens`` (some 0), over-long prompts (some refused by the prefill, some only by
the decode because prompt + max_tokens is too long), and clients that disconnect after a
random delay -- before, during or after the prefill, mid-stream. ``hooks`` run at given
request counts (kill a backend, restart it). Every answer is checked: a 200 must be complete
(the JSON has ``max_tokens`` tokens; a stream ends with ``[DONE]`` after as many content
events, or with an error event), anything else is a *silent bad 200*.

Used by tests/proxy/test_soak.py (500 requests) and benchmarks/proxy_soak.py (20,000, with
the proxy's memory and file descriptors sampled). What is held afterwards is read from the
simulators' ``/sim/state`` (``held_blocks``) and the proxy's ``/health`` totals.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ascend_pd.simserver.tokens import PIECE

#: the generated words are short (tokens.VOCAB), one token each
WORD = "link"


@dataclass
class SoakResult:
    """What the clients saw."""

    requests: int = 0
    disconnected: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    stream_errors: int = 0  # 200 streams that ended with an error event (honest)
    transport_errors: list[str] = field(default_factory=list)  # no HTTP answer at all
    bad_200: list[str] = field(default_factory=list)  # 200 with an empty/truncated body

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "disconnected": self.disconnected,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "stream_errors": self.stream_errors,
                "transport_errors": len(self.transport_errors),
                "transport_error_examples": self.transport_errors[:5],
                "bad_200": len(self.bad_200),
                "bad_200_examples": self.bad_200[:5]}


def _request(rng: random.Random, model: str, max_model_len: int) -> dict[str, Any]:
    roll = rng.random()
    max_tokens = rng.randint(1, 24)
    words = rng.randint(4, 60)
    if roll < 0.03:
        max_tokens = 0  # refused by the decode after a successful prefill
    elif roll < 0.08:  # fits the prefill (max_tokens 1), not the decode
        words, max_tokens = max_model_len - 8, 32
    elif roll < 0.10:  # refused by the prefill itself
        words = max_model_len + 16
    text = " ".join(WORD[:PIECE] for _ in range(words))
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                            "stream": rng.random() < 0.5}
    if rng.random() < 0.3:
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    return body


def check_answer(body: dict[str, Any], status: int, data: bytes) -> str | None:
    """Why a 200 answer is wrong (None when it is complete); counts stream error events."""
    if status != 200:
        return None
    want = body["max_tokens"]
    if not body["stream"]:
        try:
            answer = json.loads(data)
            choice = answer["choices"][0]
            text = choice["message"]["content"] if "messages" in body else choice["text"]
            tokens = answer["usage"]["completion_tokens"]
        except (ValueError, KeyError, IndexError, TypeError):
            return f"200 with a body that is not a whole answer: {data[:80]!r}"
        if tokens != want or len(text.split()) != want:
            return f"200 with {len(text.split())} tokens of {want}"
        return None
    events = [e[len(b"data: "):] for e in data.split(b"\n\n") if e.startswith(b"data: ")]
    if events and events[-1].startswith(b'{"error"'):
        return "stream_error"
    if not events or events[-1] != b"[DONE]":
        return f"200 stream without [DONE] or an error event: {data[-80:]!r}"
    content = 0
    for event in events[:-1]:
        choices = json.loads(event).get("choices") or []
        for choice in choices:
            delta = choice.get("delta") or {}
            content += bool(choice.get("text") or delta.get("content"))
    return None if content == want else f"200 stream with {content} tokens of {want}"


async def soak(proxy_url: str, *, requests: int, concurrency: int = 32,
               disconnect_rate: float = 0.3, max_delay_s: float = 0.08, seed: int = 0,
               model: str = "sim-model", max_model_len: int = 2048,
               hooks: Sequence[tuple[int, Callable[[], None]]] = (),
               timeout_s: float = 60.0) -> SoakResult:
    """Send ``requests`` requests, ``concurrency`` at a time; run each hook (in a thread)
    once that many requests have been started."""
    rng = random.Random(seed)
    result = SoakResult()
    queue = iter(range(requests))
    pending_hooks = sorted(hooks, key=lambda h: h[0])
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        body = _request(rng, model, max_model_len)
        path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
        cut = rng.uniform(0, max_delay_s) if rng.random() < disconnect_rate else None

        async def call() -> tuple[int, bytes]:
            async with session.post(proxy_url + path, json=body,
                                    headers={"X-Request-Id": f"soak-{seed}-{index}"}) as resp:
                return resp.status, await resp.read()

        if cut is None:
            try:
                status, data = await call()
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.transport_errors.append(repr(exc))
                return
        else:
            try:
                status, data = await asyncio.wait_for(call(), cut)
            except TimeoutError:
                result.disconnected += 1  # wait_for cancelled the call: connection closed
                return
            except aiohttp.ClientError as exc:
                result.transport_errors.append(repr(exc))
                return
        result.statuses[status] += 1
        problem = check_answer(body, status, data)
        if problem == "stream_error":
            result.stream_errors += 1
        elif problem is not None:
            result.bad_200.append(problem)

    async def worker(session: aiohttp.ClientSession) -> None:
        for index in queue:
            while pending_hooks and index >= pending_hooks[0][0]:
                _at, hook = pending_hooks.pop(0)
                await asyncio.to_thread(hook)
            result.requests += 1
            await one(session, index)

    # force_close: a cancelled call must close its connection (that is the disconnect).
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return result
