"""``--workers N``: N proxy processes on one port, and one ``/metrics`` over all of them.

One Python process tops out at one core. With ``workers`` > 1 the parent reserves the port
(a bound, never-listening ``SO_REUSEPORT`` socket, so ``--port 0`` works too), forks N
workers that each listen on it with ``SO_REUSEPORT`` -- the kernel spreads new connections
over them -- and restarts a worker that dies. Each worker has its own pools, health
checks, admission gate, breakers and upstream connections.

* **Limits are shared by splitting**: each worker gets ``max_in_flight``, ``queue_size`` and
  ``max_connections`` divided by N (at least 1), so a backend never sees more than the
  configured in-flight limit from the proxy as a whole.
* **/health** is the answering worker's view; every worker probes every backend, so the
  views agree within one ``health_interval_s``. The document names the ``worker``.
* **/metrics** aggregates: the answering worker fetches ``/metrics?local=1`` from its
  siblings over their unix sockets (in a 0700 run directory) and returns every series
  with a ``worker="i"`` label, grouped per metric family as the text format requires.
  Sum over ``worker`` for proxy-wide values. A sibling that does not answer within 2 s is
  left out (its series are missing, never wrong).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ascend_pd.errors import ProxyError
from ascend_pd.proxy.config import ProxyConfig

log = logging.getLogger("ascend_pd.proxy")
PEER_TIMEOUT_S = 2.0


def worker_config(config: ProxyConfig, port: int) -> ProxyConfig:
    """One worker's share of the limits."""
    n = config.workers

    def share(v: int) -> int:
        return max(1, v // n) if v else 0

    return replace(config, port=port, workers=1, max_in_flight=share(config.max_in_flight),
                   queue_size=share(config.queue_size),
                   max_connections=max(1, config.max_connections // n))


def socket_path(run_dir: str, index: int) -> str:
    return str(Path(run_dir) / f"worker-{index}.sock")


# -- metrics over all workers ---------------------------------------------------------------
def _labelled(line: str, worker: int) -> str:
    name, brace, rest = line.partition("{")
    if brace:
        return f'{name}{{worker="{worker}",{rest}'
    name, _sp, value = line.partition(" ")
    return f'{name}{{worker="{worker}"}} {value}'


def merge_metrics(texts: dict[int, str]) -> str:
    """Prometheus texts of several workers as one: a ``worker`` label on every sample, each
    family's HELP/TYPE once and its samples together."""
    families: dict[str, tuple[list[str], list[str]]] = {}
    for worker, text in sorted(texts.items()):
        current: tuple[list[str], list[str]] | None = None
        for line in text.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                name = line.split(" ", 3)[2]
                current = families.setdefault(name, ([], []))
                if line not in current[0]:
                    current[0].append(line)
            elif line and not line.startswith("#"):
                if current is None:
                    current = families.setdefault(line.split("{")[0].split(" ")[0], ([], []))
                current[1].append(_labelled(line, worker))
    out: list[str] = []
    for head, samples in families.values():
        out += head + samples
    return "\n".join(out) + "\n"


async def cluster_metrics(index: int, peers: dict[int, str], local: str) -> str:
    """This worker's metrics merged with its siblings' (fetched over their unix sockets)."""

    async def fetch(path: str) -> str | None:
        try:
            conn = aiohttp.UnixConnector(path=path)
            timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s, \
                    s.get("http://worker/metrics?local=1") as resp:
                return await resp.text() if resp.status == 200 else None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return None

    found = await asyncio.gather(*(fetch(p) for p in peers.values()))
    texts = {i: t for i, t in zip(peers, found, strict=True) if t is not None}
    texts[index] = local
    return merge_metrics(texts)


# -- processes ----------------------------------------------------------------------------
def _worker_main(config: ProxyConfig, index: int, n: int, run_dir: str) -> None:
    from ascend_pd.proxy.server import run_until_signal, start_proxy

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM

    async def main(stop: asyncio.Event) -> None:
        path = socket_path(run_dir, index)
        proxy = await start_proxy(config, reuse_port=True,
                                  extra_sites=lambda r: [web.UnixSite(r, path)])
        proxy.state.worker = index
        proxy.state.peers = {j: socket_path(run_dir, j) for j in range(n) if j != index}
        await stop.wait()
        await proxy.stop()

    run_until_signal(main)


def _reserve_port(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve_workers(config: ProxyConfig) -> None:
    """Fork ``config.workers`` workers on one port; restart any that dies; stop all on
    SIGTERM/SIGINT (each gets 10 s, then SIGKILL)."""
    reserved = _reserve_port(config.host, config.port)
    port = int(reserved.getsockname()[1])
    run_dir = tempfile.mkdtemp(prefix="ascend-pd-proxy-")  # 0700: only we reach the sockets
    cfg = worker_config(config, port)
    ctx = multiprocessing.get_context("fork")  # no event loop exists yet in this process
    n = config.workers
    procs: dict[int, Any] = {}
    started: dict[int, float] = {}
    quick_deaths = 0
    stop = threading.Event()

    def start(i: int) -> None:
        proc = ctx.Process(target=_worker_main, args=(cfg, i, n, run_dir), daemon=False)
        proc.start()
        procs[i], started[i] = proc, time.monotonic()

    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    log.info("ascend-pd proxy: %d workers on %s:%d (SO_REUSEPORT)", n, config.host, port)
    try:
        for i in range(n):
            start(i)
        while not stop.wait(0.5):
            for i, proc in list(procs.items()):
                if not proc.is_alive():
                    if time.monotonic() - started[i] < 5:
                        quick_deaths += 1
                        if quick_deaths > 2 * n:  # it cannot start: do not spin
                            raise ProxyError(
                                f"proxy worker {i} keeps exiting at start (code "
                                f"{proc.exitcode})", hint="run with --workers 1 to see why")
                    log.error("proxy worker %d (pid %s) exited with %s; restarting", i,
                              proc.pid, proc.exitcode)
                    start(i)
    finally:
        for proc in procs.values():
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for s, handler in old.items():
            signal.signal(s, handler)
        reserved.close()
        shutil.rmtree(run_dir, ignore_errors=True)
