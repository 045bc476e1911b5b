"""The proxy benchmark's load phases against vllm-router (imported by ``proxy_bench.py``).

Each phase starts its own simulators (its latency knobs differ, and counters such as the
prefix-cache hits or the peak of running requests must start at zero for every contender)
and its own contenders, and tears them down. Every loop is bounded; loopback only.

* ``longstream``: N concurrent streams x T tokens at 20 ms/token; achieved tokens/s against
  a direct client, and each relay's CPU-seconds per 1,000 relayed stream events.
* ``overload``: N concurrent requests against relays told to keep backends at L in flight;
  statuses (429/503 with Retry-After vs anything else), p99, and the most requests any
  backend ever saw running at once.
* ``prefix``: S system prompts x U users in random order at concurrency C; prefills compute
  one prompt at a time (``compute_lanes`` 1) with a prefix cache too small to hold every
  system prompt on every instance -- so *where* a prompt goes decides whether its prefix is
  computed again. Prefill compute saved and TTFT p50/p95 per policy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import proxy_bench as pb
import vllm_router

from ascend_pd.simserver import SimServerProcess

Row = tuple[str, str, str, str]


@contextmanager
def sims(**knobs: Any) -> Iterator[tuple[list[str], list[str], list[SimServerProcess]]]:
    servers = [SimServerProcess(role, model=pb.MODEL, **knobs).start()
               for role in ("prefill", "prefill", "decode", "decode")]
    try:
        yield ([s.address for s in servers[:2]], [s.address for s in servers[2:]], servers)
    finally:
        for s in servers:
            s.stop()


def start_router(prefills: list[str], decodes: list[str], **kw: Any,
                 ) -> tuple[subprocess.Popen[bytes], str]:
    port = pb.free_port()
    argv = vllm_router.router_argv(vllm_router.ensure_router(), port, prefills, decodes,
                                   prometheus_port=pb.free_port(), **kw)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    pb.wait_healthy(url)
    return proc, url


Starter = Callable[[list[str], list[str]], tuple[subprocess.Popen[bytes], str]]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- long streams -----------------------------------------------------------------------------
async def _streams(url: str | None, direct: pb.Direct | None, n: int, tokens: int,
                   ) -> tuple[float, int, int]:
    """n concurrent streams at once: (seconds, events received, failed requests)."""
    req = {"model": pb.MODEL, "prompt": pb.PROMPT, "max_tokens": tokens, "stream": True}
    connector = aiohttp.TCPConnector(limit=0)
    events = errors = 0
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=600)) as session:

        async def one() -> None:
            nonlocal events, errors
            try:
                if direct is not None:
                    ok = await direct(session, req)
                    events += tokens if ok else 0
                    errors += not ok
                    return
                assert url is not None
                async with session.post(url + "/v1/completions", json=req) as resp:
                    data = await resp.read()
                ok = resp.status == 200 and data.endswith(b"[DONE]\n\n")
                events += data.count(b"data: {")
                errors += not ok
            except (aiohttp.ClientError, asyncio.TimeoutError):
                errors += 1

        t = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - t, events, errors


def phase_longstream(args: argparse.Namespace, rows: list[Row],
                     results: dict[str, float], starters: dict[str, Starter]) -> None:
    n, tokens = args.long_streams, args.long_tokens
    with sims(decode_ms_per_token=20.0, prefill_ms_per_1k=args.prefill_ms_per_1k) as (p, d, _):
        secs, events, errs = asyncio.run(_streams(None, pb.Direct(p, d), n, tokens))
        base = events / secs
        rows.append((f"long streams {n}x{tokens} direct", f"{base:,.0f} tok/s", "1.00x",
                     f"errors {errs}"))
        for name, start in starters.items():
            proc, url = start(p, d)
            try:
                asyncio.run(_streams(url, None, min(n, 32), 8))  # warm up
                cpu0 = pb.cpu_seconds(proc.pid)
                secs, events, errs = asyncio.run(_streams(url, None, n, tokens))
                cpu = pb.cpu_seconds(proc.pid) - cpu0
            finally:
                pb.stop(proc)
            rate = events / secs
            per_k = cpu / max(1, events) * 1000
            results[f"longstream_tok_s[{name}]"] = rate
            results[f"longstream_cpu_s_per_1k_events[{name}]"] = per_k
            rows.append((f"long streams {n}x{tokens} {name}", f"{rate:,.0f} tok/s",
                         f"{rate / base:.2f}x direct",
                         f"CPU {per_k * 1000:.1f} ms/1k events, errors {errs}"))


# -- overload ---------------------------------------------------------------------------------
async def _flood(url: str, n: int) -> dict[str, Any]:
    req = {"model": pb.MODEL, "prompt": pb.PROMPT, "max_tokens": 32}
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=300)) as session:

        async def one() -> None:
            t = time.perf_counter()
            try:
                async with session.post(url + "/v1/completions", json=req) as resp:
                    await resp.read()
                    key = str(resp.status)
                    if resp.status in (429, 503) and "Retry-After" not in resp.headers:
                        key += " without Retry-After"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                key = type(exc).__name__
            latencies.append(time.perf_counter() - t)
            statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(one() for _ in range(n)))
    return {"statuses": statuses, "p99": _pct(latencies, 0.99)}


def phase_overload(args: argparse.Namespace, rows: list[Row], results: dict[str, float],
                   limited: dict[str, Starter]) -> None:
    _raise_fd_limit()
    n = args.overload_requests
    for name, start in limited.items():
        with sims(decode_ms_per_token=args.decode_ms_per_token,
                  prefill_ms_per_1k=args.prefill_ms_per_1k) as (p, d, servers):
            proc, url = start(p, d)
            try:
                out = asyncio.run(_flood(url, n))
            finally:
                pb.stop(proc)
            peak = max(pb_state(s)["peak_running"] for s in servers)
        st = out["statuses"]
        bad = sum(v for k, v in st.items() if k not in ("200", "429", "503"))
        results[f"overload_bad[{name}]"] = bad
        results[f"overload_peak_running[{name}]"] = peak
        rows.append((f"overload {n} at once {name}",
                     ", ".join(f"{k}: {v}" for k, v in sorted(st.items())),
                     f"p99 {out['p99'] * 1000:.0f} ms",
                     f"other errors {bad}; backend peak in flight {peak} "
                     f"(limit {args.overload_limit})"))


def pb_state(server: SimServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/sim/state", timeout=5) as resp:
        return dict(json.loads(resp.read()))


# -- shared prefix ----------------------------------------------------------------------------
def _prefix_requests(systems: int, users: int, words: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    reqs = []
    for s in range(systems):
        system = " ".join(f"s{s:02d}w{i:04d}" for i in range(words))
        for u in range(users):
            user = " ".join(f"u{s:02d}{u:03d}q{i:02d}" for i in range(24))
            reqs.append({"model": pb.MODEL, "prompt": f"{system} {user}", "max_tokens": 4,
                         "stream": True})
    rng.shuffle(reqs)
    return reqs


async def _ttft(url: str, reqs: list[dict[str, Any]], concurrency: int,
                ) -> tuple[list[float], int]:
    ttfts: list[float] = []
    errors = 0
    queue = iter(reqs)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=300)) as session:

        async def worker() -> None:
            nonlocal errors
            for req in queue:
                t = time.perf_counter()
                try:
                    async with session.post(url + "/v1/completions", json=req) as resp:
                        first = await resp.content.readany()
                        ttfts.append(time.perf_counter() - t)
                        rest = await resp.read()
                        errors += resp.status != 200 or not (first + rest).endswith(
                            b"[DONE]\n\n")
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ttfts, errors


def phase_prefix(args: argparse.Namespace, rows: list[Row], results: dict[str, float],
                 policies: dict[str, Starter]) -> None:
    reqs = _prefix_requests(args.prefix_systems, args.prefix_users, args.prefix_words, 7)
    knobs = {"decode_ms_per_token": args.decode_ms_per_token,
             "prefill_ms_per_1k": args.prefix_prefill_ms_per_1k, "compute_lanes": 1,
             "prefix_cache_blocks": args.prefix_cache_blocks}
    base = 0.0
    for name, start in policies.items():
        with sims(**knobs) as (p, d, servers):
            proc, url = start(p, d)
            try:
                ttfts, errs = asyncio.run(_ttft(url, reqs, args.prefix_concurrency))
            finally:
                pb.stop(proc)
            states = [pb_state(s) for s in servers[:2]]
        hit = sum(s["prefix_cache_hit_tokens"] for s in states)
        computed = sum(s["prefill_computed_tokens"] for s in states)
        saved = hit / max(1, hit + computed) * 100
        p50, p95 = statistics.median(ttfts) * 1000, _pct(ttfts, 0.95) * 1000
        base = base or p50
        results[f"prefix_ttft_p50_ms[{name}]"] = p50
        results[f"prefix_saved_pct[{name}]"] = saved
        rows.append((f"shared prefix {args.prefix_systems}x{args.prefix_users} {name}",
                     f"TTFT p50 {p50:.0f} ms, p95 {p95:.0f} ms", f"{p50 / base:.2f}x first",
                     f"prefill saved {saved:.0f}%, errors {errs}"))
