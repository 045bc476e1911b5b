"""What every part of the proxy shares: config, pools, metrics, the upstream client, probing.

Its own module so that the routes (``app``) and the relay (``relay``, ``legs``) both import
it and never each other. ``backend_headers`` is the one place the headers of a leg to a
backend are built (prefill, decode, drain, ``/v1/models``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any

from aiohttp import web

from ascend_pd.proxy.admission import Admission, AdmissionLimits
from ascend_pd.proxy.balancer import Backend, Pool
from ascend_pd.proxy.config import ProxyConfig
from ascend_pd.proxy.connguard import ConnectionGuard
from ascend_pd.proxy.discovery import make_discovery
from ascend_pd.proxy.metrics import ProxyMetrics
from ascend_pd.proxy.trace import JSON_TYPE
from ascend_pd.proxy.upstream import UpstreamClient, UpstreamError

log = logging.getLogger("ascend_pd.proxy")


class ProxyState:
    """What every handler shares: config, pools, metrics, the upstream HTTP client."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.pools = {
            "prefill": Pool.of("prefill", config.prefill, config.policy_prefill),
            "decode": Pool.of("decode", config.decode, config.policy_decode),
        }
        self.metrics = ProxyMetrics()
        self.admission = Admission(self.pools, AdmissionLimits(
            max_in_flight=config.max_in_flight, queue_size=config.queue_size,
            queue_timeout_s=config.queue_timeout_s, breaker_failures=config.breaker_failures,
            breaker_open_s=config.breaker_open_s), on_wait=self._waited)
        self.guard = ConnectionGuard(max_connections=config.max_connections,
                                     header_timeout_s=config.header_timeout_s,
                                     idle_timeout_s=config.idle_timeout_s)
        self._upstream: UpstreamClient | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.started = time.time()
        #: the sockets the proxy listens on (set by ``server``), so admin refuses itself
        self.sockets: list[tuple[str, int]] = []
        #: with --workers: this worker's index and its siblings' unix sockets (proxy.workers)
        self.worker: int | None = None
        self.peers: dict[int, str] = {}
        #: decode-first: where the decodes POST their block info (the bound port is set
        #: by start_proxy once known)
        self.metaserver_url = config.metaserver_for(config.port)

    def listening_ports(self) -> set[int]:
        return {port for _host, port in self.sockets} or {self.config.port}

    @property
    def upstream(self) -> UpstreamClient:
        assert self._upstream is not None, "the app is not running"
        return self._upstream

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background job (drain) that outlives the request; cancelled at shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _waited(self, role: str, seconds: float) -> None:
        self.metrics.observe("ascend_pd_proxy_queue_wait_seconds", seconds, role=role)

    def record_probe(self, backend: Backend, *, ok: bool) -> None:
        change = Pool.record(backend, ok, eject_after=self.config.eject_after,
                             restore_after=self.config.restore_after)
        if change == "ejected":
            log.warning("%s backend %s ejected after %d failed health checks",
                        backend.role, backend.address, backend.consecutive_failures)
        elif change == "restored":
            log.warning("%s backend %s restored after %d good health checks",
                        backend.role, backend.address, backend.consecutive_successes)

    def backend_headers(self, client: Mapping[str, str], request_id: str,
                        ) -> dict[str, str]:
        """Headers of every leg to a backend for one client request.

        ``Authorization`` is the configured backend key, else the client's header, else
        absent -- never invented (no ``Bearer None``). Every leg of a
        request (prefill, decode, drain) carries the same headers: a vLLM started with
        ``--api-key`` answers 401 to a leg without it, and a refused drain keeps the blocks.
        """
        headers = {"Content-Type": JSON_TYPE, "X-Request-Id": request_id}
        key = self.config.backend_api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif "Authorization" in client:
            headers["Authorization"] = client["Authorization"]
        return headers

    def totals(self) -> dict[str, dict[str, int]]:
        """In-flight requests and outstanding tokens per role (0/0 when idle)."""
        out = {}
        for role, pool in self.pools.items():
            in_flight, tokens = pool.totals()
            out[role] = {"in_flight": in_flight, "outstanding_tokens": tokens}
        return out

    # -- lifecycle ---------------------------------------------------------------------
    async def lifecycle(self, _app: web.Application) -> AsyncIterator[None]:
        self._upstream = UpstreamClient()
        checker = asyncio.create_task(self._health_loop())
        if self.config.discover:
            # The first look-up before serving: a DNS-only proxy starts with its backends.
            discovery = make_discovery(self.config, self.pools)
            await discovery.refresh_all()
            self.spawn(discovery.run())
        yield
        checker.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(checker, *self.tasks, return_exceptions=True)
        await self._upstream.close()

    async def probe(self, backend: Backend) -> None:
        try:
            async with await self.upstream.get(backend.address, "/health",
                                               self.config.health_timeout_s) as resp:
                ok = resp.status == 200
                await resp.read()
        except UpstreamError:
            ok = False
        self.record_probe(backend, ok=ok)

    async def _health_loop(self) -> None:
        while True:
            backends = [b for pool in self.pools.values() for b in pool.backends]
            await asyncio.gather(*(self.probe(b) for b in backends))
            await asyncio.sleep(self.config.health_interval_s)
