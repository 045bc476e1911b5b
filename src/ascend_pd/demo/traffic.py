"""Requests the demo sends through the proxy, and a small latency/throughput sample."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5)


async def chat(url: str, model: str, text: str) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 24}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(
        f"{url}/v1/chat/completions", json=body
    ) as resp:
        data: dict[str, Any] = await resp.json(content_type=None)
        if resp.status != 200:
            raise RuntimeError(f"chat completion failed: HTTP {resp.status}: {data}")
        return data


async def stream_completion(url: str, model: str, prompt: str,
                            on_text: Callable[[str], None]) -> int:
    """Stream a completion, calling ``on_text`` per chunk; returns the chunk count."""
    body = {"model": model, "prompt": prompt, "max_tokens": 24, "stream": True}
    chunks = 0
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(
        f"{url}/v1/completions", json=body
    ) as resp:
        if resp.status != 200:
            raise RuntimeError(f"streaming completion failed: HTTP {resp.status}: "
                               f"{await resp.text()}")
        async for raw in resp.content:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            text = json.loads(line[6:])["choices"][0].get("text", "")
            chunks += 1
            on_text(text)
    return chunks


@dataclass
class LoadSummary:
    requests: int
    concurrency: int
    errors: int
    wall_s: float
    ttft_ms_p50: float
    ttft_ms_p95: float
    e2e_ms_p50: float
    e2e_ms_p95: float
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "tokens_per_s": round(self.tokens_per_s, 1)}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load_sample(url: str, model: str, *, requests: int = 64, concurrency: int = 8,
                      max_tokens: int = 32) -> LoadSummary:
    """Streaming completions through the proxy: time to first token and end to end."""
    ttft: list[float] = []
    e2e: list[float] = []
    tokens = 0
    errors = 0
    gate = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal tokens, errors
        body = {"model": model, "prompt": f"request {i}: " + "tell me about Ascend " * 20,
                "max_tokens": max_tokens, "stream": True}
        async with gate:
            start = time.perf_counter()
            first = None
            try:
                async with session.post(f"{url}/v1/completions", json=body) as resp:
                    if resp.status != 200:
                        errors += 1
                        return
                    async for raw in resp.content:
                        if raw.startswith(b"data: ") and not raw.startswith(b"data: [DONE]"):
                            first = first or time.perf_counter()
                            tokens += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                errors += 1
                return
            end = time.perf_counter()
            if first is not None:
                ttft.append((first - start) * 1000)
            e2e.append((end - start) * 1000)

    start = time.perf_counter()
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        await asyncio.gather(*(one(session, i) for i in range(requests)))
    wall = time.perf_counter() - start
    return LoadSummary(requests, concurrency, errors, wall, _pct(ttft, 0.5), _pct(ttft, 0.95),
                       statistics.median(e2e) if e2e else 0.0, _pct(e2e, 0.95), tokens)
