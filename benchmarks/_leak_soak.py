"""Proxy fault-injection soak (not a test): the KV-accounting guarantee over a long bad day.

2 prefill + 2 decode simulated vLLMs and the proxy (``ascend-pd proxy``, access log on, to
/dev/null) run as separate processes. ``ascend_pd.simserver.soak`` sends ``--requests``
(default 20,000) requests: 30 % of clients disconnect after a random delay (before, during or
after the prefill, mid-stream), over-long prompts (refused by the prefill, or only by the
decode), ``max_tokens: 0``; one decode is SIGKILLed at 1/3 of the run and restarted on its
port at 2/3. The proxy's RSS and open file descriptors are sampled every ``--sample``
requests.

Pass criteria (printed, and the exit code): 0 KV blocks held on every prefill and 0 in-flight
in the proxy once the drains are done; 0 answers that are 200 with an empty or truncated
body; RSS flat (the last sample within 10 % of the one after warm-up) and no descriptor kept:
once idle past the keep-alive limits, the proxy holds at most 16 more fds than before the
first request (a count taken mid-run only says how many connections were open then).

Run: ``.venv/bin/python benchmarks/proxy_soak.py [--requests 20000] [--concurrency 64]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

# The script's folder is on sys.path when it runs: share the benchmark's /proc readers.
from proxy_bench import free_port, rss_kib

from ascend_pd.simserver import SimServerProcess
from ascend_pd.simserver.soak import soak

MODEL = "soak-model"
MAX_MODEL_LEN = 1024


def get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:  # /health answers 503 while a backend is out
        return json.loads(exc.read())  # type: ignore[no-any-return]


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_proxy(prefills: list[str], decodes: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "/tmp/leakw/wrap.py", "proxy", "--host", "127.0.0.1",
            "--port", str(port)]
    for p in prefills:
        argv += ["--prefill", p]
    for d in decodes:
        argv += ["--decode", d]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a loaded machine takes a while to import the CLI
    while time.monotonic() < deadline:
        try:
            if get_json(url + "/health").get("status") == "ok":
                return proc, url
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the proxy did not become healthy")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--disconnect-rate", type=float, default=0.3)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    knobs: dict[str, Any] = {"model": MODEL, "max_model_len": MAX_MODEL_LEN,
                             "kv_abort_timeout_s": 3600, "prefill_ms_per_1k": 20,
                             "decode_ms_per_token": 1}
    prefills = [SimServerProcess("prefill", **knobs).start(120) for _ in range(2)]
    decodes = [SimServerProcess("decode", **knobs).start(120) for _ in range(2)]
    servers = prefills + decodes
    proxy, url = start_proxy([p.address for p in prefills], [d.address for d in decodes])
    victim = decodes[1]
    samples: list[tuple[int, int, int]] = []

    def sample(done: int) -> None:
        samples.append((done, rss_kib(proxy.pid), fds(proxy.pid)))

    def kill() -> None:
        print(f"  killing decode {victim.address}", flush=True)
        victim.kill()

    def restart() -> None:
        print(f"  restarting decode on port {victim.port}", flush=True)
        # Generous start timeout: on a loaded machine a fresh interpreter takes a while.
        servers.append(SimServerProcess("decode", port=victim.port, **knobs).start(120))

    hooks = [(n, lambda n=n: sample(n)) for n in range(0, args.requests + 1, args.sample)]
    import signal as _s
    hooks += [(args.requests // 3, kill), (2 * args.requests // 3, restart), (3000, lambda: proxy.send_signal(_s.SIGUSR1)), (args.requests - 1, lambda: proxy.send_signal(_s.SIGUSR1))]
    t0 = time.monotonic()
    try:
        result = asyncio.run(soak(url, requests=args.requests, concurrency=args.concurrency,
                                  disconnect_rate=args.disconnect_rate, seed=args.seed,
                                  model=MODEL, max_model_len=MAX_MODEL_LEN, hooks=hooks))
        elapsed = time.monotonic() - t0
        sample(args.requests)
        held: list[int] = []
        totals: dict[str, Any] = {}
        deadline = time.monotonic() + 60  # drains of the last abandoned requests
        while time.monotonic() < deadline:
            held = [get_json(p.url + "/sim/state")["held_blocks"] for p in prefills]
            totals = get_json(url + "/health")["totals"]
            idle = all(v["in_flight"] == 0 for v in totals.values())
            if not any(held) and idle:
                break
            time.sleep(0.5)
        metrics = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
        # Idle keep-alive connections close after 4 s (upstream pool) and the clients are
        # gone: what stays open now was kept.
        time.sleep(6)
        settled = fds(proxy.pid)
    finally:
        proxy.terminate()
        try:
            proxy.wait(30)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait(10)
        for server in servers:
            server.stop()

    warm = samples[min(2, len(samples) - 1)]
    last = samples[-1]
    rss_flat = last[1] <= warm[1] * 1.10
    fd_flat = settled <= samples[0][2] + 16
    summary = result.to_dict()
    checks = {
        "0 KV blocks held": not any(held),
        "0 in flight": all(v["in_flight"] == 0 for v in totals.values()),
        "0 bad 200s": not result.bad_200,
        "flat RSS": rss_flat,
        "flat fds": fd_flat,
    }
    print(f"\n{args.requests} requests in {elapsed:.0f} s at concurrency {args.concurrency}")
    print(json.dumps(summary, indent=2))
    print(f"held blocks per prefill: {held}; proxy totals: {totals}")
    print(f"proxy fds: {samples[0][2]} before the first request, {settled} once idle")
    print("drains: " + ", ".join(line for line in metrics.splitlines()
                                 if line.startswith("ascend_pd_proxy_drains_total")))
    print("\n requests   RSS KiB   fds")
    for done, rss, fd in samples:
        print(f"{done:9d} {rss:9d} {fd:5d}")
    print()
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
