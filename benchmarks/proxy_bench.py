"""Proxy benchmark (not a test): 2 prefill + 2 decode simulated vLLMs as separate processes.

Measures in one run, against the same servers:

1. streaming throughput at concurrency 64: a direct client (it calls prefill, then decode
   itself) vs. through the proxy (target >= 0.8x direct) and, with ``--compare-stacks``,
   a minimal starlette/uvicorn + httpx relay;
2. added p50 latency at concurrency 1, non-streamed (target <= 0.5 ms). The candidates run
   *interleaved* in blocks of ``--block`` requests, each with its own warmed-up client session
   and keep-alive connections, so that load from other processes on a shared machine lands on
   both alike; the proxy's CPU time per request (``/proc/PID/task/*/schedstat``) is reported
   next to it because it is far less noisy than wall-clock latency;
3. 1024 concurrent streams through the proxy (target: 0 errors);
4. proxy RSS across ``--requests`` requests (default 100k; target: flat within 10%).

Loopback only; every loop is bounded; it stops by itself and prints a table.
With ``--floor`` ``benchmarks/minimal_relay.py`` (the hot path only: no balancing,
retries, metrics or access log) is measured too, once with aiohttp's client for the upstream
legs and once with the proxy's own: the floor against which the proxy's additions are judged.
With ``--bare-direct`` a second baseline joins the c=1 phase: the direct client on the
proxy's own HTTP client instead of aiohttp's (the proxy's whole cost, with no client-stack
difference between the two paths).

Run: ``.venv/bin/python benchmarks/proxy_bench.py [--requests 20000] [--compare-stacks]
[--floor] [--bare-direct] [--phases latency] [--uvloop]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp

from ascend_pd.proxy import contract
from ascend_pd.proxy.config import BackendAddress
from ascend_pd.proxy.upstream import UpstreamClient
from ascend_pd.simserver import SimServerProcess

MODEL = "bench-model"
PROMPT = "the quick brown fox jumps over the lazy dog " * 24  # ~240 prompt tokens
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` (nanosecond schedstat, not 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just exited
    return total / 1e9


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never became healthy")


def body(stream: bool, max_tokens: int) -> dict[str, object]:
    return {"model": MODEL, "prompt": PROMPT, "max_tokens": max_tokens, "stream": stream}


class Direct:
    """The baseline: the client does the P->D hand-off itself, round-robin."""

    def __init__(self, prefills: list[str], decodes: list[str]) -> None:
        self.p = itertools.cycle(prefills)
        self.d = itertools.cycle(decodes)

    async def __call__(self, session: aiohttp.ClientSession, req: dict[str, object]) -> bool:
        headers = {"X-Request-Id": str(uuid.uuid4())}
        leg = contract.prefill_body(req)
        async with session.post(f"http://{next(self.p)}/v1/completions", json=leg,
                                headers=headers) as resp:
            kv = (await resp.json())["kv_transfer_params"]
        async with session.post(f"http://{next(self.d)}/v1/completions",
                                json=contract.decode_body(req, kv),
                                headers=headers) as resp:
            data = await resp.read()
            return resp.status == 200 and (not req["stream"] or data.endswith(b"[DONE]\n\n"))


class DirectUpstream(Direct):
    """The baseline on the proxy's own HTTP client (one client per event loop)."""

    def __init__(self, prefills: list[str], decodes: list[str]) -> None:
        super().__init__(prefills, decodes)
        self.p_addr = itertools.cycle([BackendAddress.parse(p) for p in prefills])
        self.d_addr = itertools.cycle([BackendAddress.parse(d) for d in decodes])
        self.clients: dict[asyncio.AbstractEventLoop, UpstreamClient] = {}

    async def __call__(self, session: aiohttp.ClientSession, req: dict[str, object]) -> bool:
        client = self.clients.setdefault(asyncio.get_running_loop(), UpstreamClient())
        headers = {"Content-Type": "application/json", "X-Request-Id": str(uuid.uuid4())}
        leg = contract.prefill_body(req)
        resp = await client.request("POST", next(self.p_addr), "/v1/completions",
                                    body=json.dumps(leg).encode(), headers=headers)
        kv = json.loads(await resp.read())["kv_transfer_params"]
        resp = await client.request("POST", next(self.d_addr), "/v1/completions",
                                    body=json.dumps(contract.decode_body(req, kv)).encode(),
                                    headers=headers)
        data = await resp.read()
        return resp.status == 200 and (not req["stream"] or data.endswith(b"[DONE]\n\n"))


class ViaProxy:
    def __init__(self, url: str) -> None:
        self.url = url + "/v1/completions"

    async def __call__(self, session: aiohttp.ClientSession, req: dict[str, object]) -> bool:
        async with session.post(self.url, json=req) as resp:
            data = await resp.read()
            return resp.status == 200 and (not req["stream"] or data.endswith(b"[DONE]\n\n"))


Client = Callable[[aiohttp.ClientSession, dict[str, object]], Awaitable[bool]]


async def load(client: Client, req: dict[str, object], total: int, concurrency: int,
               on_progress: Callable[[int], None] | None = None,
               ) -> tuple[float, list[float], int]:
    """Run ``total`` requests with ``concurrency`` workers: (seconds, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal errors
            while (i := next(counter)) < total:
                t = time.perf_counter()
                try:
                    ok = await client(session, req)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                latencies.append(time.perf_counter() - t)
                errors += not ok
                if on_progress is not None and i % 1000 == 0:
                    on_progress(i)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, errors


async def interleaved(candidates: list[tuple[str, Client]], req: dict[str, object],
                      total: int, block: int, proxy_pid: int,
                      ) -> tuple[dict[str, list[float]], float]:
    """Concurrency 1, candidates taking turns in blocks: (latencies per name, proxy CPU/req)."""
    latencies: dict[str, list[float]] = {name: [] for name, _ in candidates}
    timeout = aiohttp.ClientTimeout(total=120)
    sessions = {name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                            timeout=timeout) for name, _ in candidates}
    proxy_cpu = 0.0
    try:
        for name, client in candidates:  # open the keep-alive connections first
            for _ in range(block):
                await client(sessions[name], req)
        for _round in range(max(1, total // block)):
            for name, client in candidates:
                cpu0 = cpu_seconds(proxy_pid)
                for _ in range(block):
                    t = time.perf_counter()
                    if not await client(sessions[name], req):
                        raise SystemExit(f"{name}: a c=1 request failed")
                    latencies[name].append(time.perf_counter() - t)
                if name.startswith("proxy"):
                    proxy_cpu += cpu_seconds(proxy_pid) - cpu0
    finally:
        for session in sessions.values():
            await session.close()
    return latencies, proxy_cpu / max(1, len(latencies.get("proxy", [])))


def start_proxy(prefills: list[str], decodes: list[str], *, uvloop: bool = False,
                extra: Sequence[str] = ()) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # serve() picks uvloop up when it is installed: hide it unless --uvloop asked for it.
    hide = "" if uvloop else "sys.modules['uvloop'] = None; "
    argv = [sys.executable, "-c", f"import sys; {hide}from ascend_pd.cli import main; main()",
            "proxy", "--host", "127.0.0.1", "--port", str(port), *extra]
    for p in prefills:
        argv += ["--prefill", p]
    for d in decodes:
        argv += ["--decode", d]
    # The access log is on, as in production; it goes to /dev/null here.
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    return proc, url


def start_starlette(prefills: list[str], decodes: list[str],
                    ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "starlette_relay.py"), str(port),
                             ",".join(prefills), ",".join(decodes)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    return proc, url


def start_minimal_relay(prefills: list[str], decodes: list[str], client: str, *,
                        uvloop: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, str(HERE / "minimal_relay.py"), str(port), ",".join(prefills),
            ",".join(decodes), "--client", client] + (["--uvloop"] if uvloop else [])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url)
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


PHASES = ("stream", "latency", "c1024", "rss", "longstream", "overload", "prefix")
#: phases that start their own simulators and contenders (benchmarks/bench_phases.py)
OWN_SIMS = ("longstream", "overload", "prefix")
BARE = "direct, ascend-pd client"


def phase_stream(args: argparse.Namespace, candidates: list[tuple[str, Client]],
                 rows: list[tuple[str, str, str, str]], results: dict[str, float]) -> None:
    base_rps = 0.0
    for name, client in candidates:
        secs, _lat, errs = asyncio.run(load(client, body(True, args.max_tokens),
                                            args.stream_requests, 64))
        rps = args.stream_requests / secs
        base_rps = base_rps or rps
        results[f"stream_c64_rps[{name}]"] = rps
        rows.append((f"stream c=64 {name}", f"{rps:,.0f} req/s",
                     f"{rps / base_rps:.2f}x direct", f"errors {errs}"))


def phase_latency(args: argparse.Namespace, candidates: list[tuple[str, Client]],
                  proxy_pid: int, rows: list[tuple[str, str, str, str]],
                  results: dict[str, float]) -> None:
    lat, cpu = asyncio.run(interleaved(candidates, body(False, args.max_tokens),
                                       args.latency_requests, args.block, proxy_pid))
    base_p50 = 0.0
    for name, _client in candidates:
        p50 = statistics.median(lat[name]) * 1000
        base_p50 = base_p50 or p50
        results[f"c1_p50_ms[{name}]"] = p50
        results[f"c1_added_ms[{name}]"] = p50 - base_p50
        extra = f"proxy CPU {cpu * 1000:.2f} ms/req" if name == "proxy" else ""
        rows.append((f"non-stream c=1 {name}", f"p50 {p50:.2f} ms",
                     f"{p50 - base_p50:+.2f} ms", extra))
    # Paired estimate: each block against the direct block run just before it, so that a
    # burst of load from other processes shifts both sides of a difference alike.
    pairs = [(name, "direct") for name, _client in candidates[1:]]
    if BARE in lat:
        pairs.append(("proxy", BARE))
    for name, base in pairs:
        diff = paired_ms(lat[name], lat[base], args.block)
        results[f"c1_added_paired_ms[{name} vs {base}]"] = diff
        rows.append((f"non-stream c=1 {name} vs {base}, paired", "", f"{diff:+.2f} ms",
                     f"median of {len(lat[name]) // args.block} block differences"))


def paired_ms(lat: list[float], base: list[float], block: int) -> float:
    """Median over blocks of (block median - the same round's baseline block median)."""
    diffs = [statistics.median(lat[i:i + block]) - statistics.median(base[i:i + block])
             for i in range(0, min(len(lat), len(base)), block)]
    return statistics.median(diffs) * 1000


def phase_rss(args: argparse.Namespace, via: Client, proxy_pid: int,
              rows: list[tuple[str, str, str, str]], results: dict[str, float]) -> None:
    samples: list[tuple[int, int]] = []
    warm = max(1000, args.requests // 10)

    def sample(i: int) -> None:
        if i >= warm and (not samples or i - samples[-1][0] >= args.requests // 10):
            samples.append((i, rss_kib(proxy_pid)))

    secs, _lat, errs = asyncio.run(load(via, body(True, 4), args.requests, 64, sample))
    samples.append((args.requests, rss_kib(proxy_pid)))
    first, last = samples[0][1], samples[-1][1]
    peak = max(s[1] for s in samples)
    growth = (peak - first) / first * 100 if first else 0.0
    results.update(rss_first_kib=first, rss_last_kib=last, rss_growth_pct=growth)
    rows.append((f"RSS over {args.requests:,} requests", f"{first / 1024:.1f} MiB",
                 f"-> {last / 1024:.1f} MiB ({growth:+.1f}% peak)",
                 f"errors {errs}, {args.requests / secs:,.0f} req/s"))


def own_phases(args: argparse.Namespace, phases: set[str],
               rows: list[tuple[str, str, str, str]], results: dict[str, float]) -> None:
    """The phases with their own simulators (benchmarks/bench_phases.py)."""
    import bench_phases as bp

    def proxy_with(*extra: str) -> Callable[[list[str], list[str]],
                                            tuple[subprocess.Popen[bytes], str]]:
        return lambda p, d: start_proxy(p, d, uvloop=args.uvloop, extra=extra)

    def router_with(**kw: object) -> Callable[[list[str], list[str]],
                                              tuple[subprocess.Popen[bytes], str]]:
        return lambda p, d: bp.start_router(p, d, **kw)

    router = {"vllm-router": router_with()} if args.router else {}
    if "longstream" in phases:
        bp.phase_longstream(args, rows, results, {"proxy": proxy_with(), **router})
    if "overload" in phases:
        limit = args.overload_limit
        # Ours: per backend. vllm-router's limit is global (2 decodes, 2 prefills: 2x).
        limited = {"proxy": proxy_with("--max-in-flight", str(limit), "--queue-size", "2048",
                                       "--queue-timeout", "30")}
        if args.router:
            limited["vllm-router"] = router_with(max_concurrent=2 * limit, queue_size=2048,
                                                 queue_timeout_s=30)
        bp.phase_overload(args, rows, results, limited)
    if "prefix" in phases:
        policies = {"proxy least_loaded": proxy_with("--policy-prefill", "least_loaded"),
                    "proxy cache_aware": proxy_with("--policy-prefill", "cache_aware")}
        if args.router:
            policies["vllm-router cache_aware"] = router_with(prefill_policy="cache_aware")
        bp.phase_prefix(args, rows, results, policies)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000, help="RSS phase length")
    ap.add_argument("--stream-requests", type=int, default=3000)
    ap.add_argument("--latency-requests", type=int, default=400,
                    help="c=1 requests per candidate")
    ap.add_argument("--block", type=int, default=10,
                    help="c=1 requests per turn when the candidates alternate")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--decode-ms-per-token", type=float, default=2.0)
    ap.add_argument("--prefill-ms-per-1k", type=float, default=20.0)
    ap.add_argument("--phases", default=",".join(PHASES),
                    help=f"comma-separated subset of {','.join(PHASES)}")
    ap.add_argument("--uvloop", action="store_true",
                    help="let the proxy (and --floor relay) use uvloop (it must be installed)")
    ap.add_argument("--compare-stacks", action="store_true",
                    help="also measure a minimal starlette/uvicorn + httpx relay")
    ap.add_argument("--floor", action="store_true",
                    help="also measure minimal relays (hot path only, both upstream clients)")
    ap.add_argument("--bare-direct", action="store_true",
                    help="c=1 phase: also a direct client on the proxy's own HTTP client")
    ap.add_argument("--router", action="store_true",
                    help="also measure vllm-router (PD mode, round_robin; installed into a "
                    "cached venv on first use, see benchmarks/vllm_router.py)")
    ap.add_argument("--long-streams", type=int, default=1024)
    ap.add_argument("--long-tokens", type=int, default=256)
    ap.add_argument("--overload-requests", type=int, default=4096)
    ap.add_argument("--overload-limit", type=int, default=256,
                    help="in-flight requests each backend may be sent")
    ap.add_argument("--prefix-systems", type=int, default=16)
    ap.add_argument("--prefix-users", type=int, default=64)
    ap.add_argument("--prefix-words", type=int, default=700,
                    help="system prompt words (3 sim tokens each)")
    ap.add_argument("--prefix-concurrency", type=int, default=32)
    ap.add_argument("--prefix-cache-blocks", type=int, default=160,
                    help="per prefill: fewer than all system prompts take")
    ap.add_argument("--prefix-prefill-ms-per-1k", type=float, default=20.0)
    ap.add_argument("--json", action="store_true", help="print results as JSON too")
    args = ap.parse_args()
    phases = set(args.phases.split(","))
    if not phases <= set(PHASES):
        ap.error(f"--phases: unknown {sorted(phases - set(PHASES))}")

    knobs = {"decode_ms_per_token": args.decode_ms_per_token,
             "prefill_ms_per_1k": args.prefill_ms_per_1k}
    servers = [SimServerProcess(role, model=MODEL, **knobs).start()
               for role in ("prefill", "prefill", "decode", "decode")]
    prefills = [s.address for s in servers[:2]]
    decodes = [s.address for s in servers[2:]]
    proxy, proxy_url = start_proxy(prefills, decodes, uvloop=args.uvloop)
    others: list[subprocess.Popen[bytes]] = []
    rows: list[tuple[str, str, str, str]] = []
    results: dict[str, float] = {}
    try:
        direct, via = Direct(prefills, decodes), ViaProxy(proxy_url)
        candidates: list[tuple[str, Client]] = [("direct", direct), ("proxy", via)]
        if args.compare_stacks:
            sl_proc, sl_url = start_starlette(prefills, decodes)
            others.append(sl_proc)
            candidates.append(("starlette+httpx relay", ViaProxy(sl_url)))
        if args.router:
            from bench_phases import start_router

            router_proc, router_url = start_router(prefills, decodes)
            others.append(router_proc)
            candidates.append(("vllm-router", ViaProxy(router_url)))
        if args.floor:
            for client in ("aiohttp", "upstream"):
                floor_proc, floor_url = start_minimal_relay(prefills, decodes, client,
                                                            uvloop=args.uvloop)
                others.append(floor_proc)
                candidates.append((f"minimal relay, {client} client", ViaProxy(floor_url)))
        for _name, client in candidates:  # warm up connections and code paths
            asyncio.run(load(client, body(True, args.max_tokens), 200, 32))
        if "stream" in phases:
            phase_stream(args, candidates, rows, results)
        if "latency" in phases:
            bare = [(BARE, DirectUpstream(prefills, decodes))] if args.bare_direct else []
            phase_latency(args, candidates + bare, proxy.pid, rows, results)
        if "c1024" in phases:
            secs, lat, errs = asyncio.run(load(via, body(True, args.max_tokens), 1024, 1024))
            results["c1024_errors"] = errs
            rows.append(("1024 concurrent streams via proxy", f"{secs:.1f} s",
                         f"p99 {sorted(lat)[int(len(lat) * 0.99) - 1] * 1000:.0f} ms",
                         f"errors {errs}"))
        if "rss" in phases:
            phase_rss(args, via, proxy.pid, rows, results)
    finally:
        for proc in [proxy, *others]:
            stop(proc)
        for server in servers:
            server.stop()
    if phases & set(OWN_SIMS):
        own_phases(args, phases, rows, results)

    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"proxy benchmark: 2 prefill + 2 decode sims, max_tokens {args.max_tokens}, "
          f"decode {args.decode_ms_per_token} ms/token, prefill "
          f"{args.prefill_ms_per_1k} ms/1k tokens, proxy "
          f"{'with' if args.uvloop else 'without'} uvloop")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
