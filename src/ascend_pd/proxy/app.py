"""The proxy's aiohttp application: routes, shared state, health probing and admin endpoints.

Routes: ``POST /v1/completions`` and ``/v1/chat/completions`` (relayed P then D),
``GET /v1/models`` (merged from healthy backends), ``GET /health`` (200 when at least one
prefill and one decode take traffic, with a per-backend summary), ``GET /metrics``
(Prometheus), ``POST /instances/add`` and ``/instances/remove`` (body
``{"type": "prefill"|"decode", "instances": ["host:port", ...]}``, bearer-token protected
when an admin token is configured).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from ascend_pd.errors import UsageError
from ascend_pd.proxy.balancer import Backend, Pool
from ascend_pd.proxy.config import BackendAddress, ProxyConfig
from ascend_pd.proxy.discovery import make_discovery
from ascend_pd.proxy.metrics import ProxyMetrics
from ascend_pd.proxy.relay import Relay
from ascend_pd.proxy.trace import JSON_TYPE, error_response
from ascend_pd.proxy.upstream import UpstreamClient, UpstreamError

log = logging.getLogger("ascend_pd.proxy")

STATE_KEY: web.AppKey[ProxyState] = web.AppKey("ascend_pd_proxy_state")


class ProxyState:
    """What every handler shares: config, pools, metrics, the upstream HTTP client."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.pools = {
            "prefill": Pool.of("prefill", config.prefill, config.policy_prefill),
            "decode": Pool.of("decode", config.decode, config.policy_decode),
        }
        self.metrics = ProxyMetrics()
        self._upstream: UpstreamClient | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.started = time.time()

    @property
    def upstream(self) -> UpstreamClient:
        assert self._upstream is not None, "the app is not running"
        return self._upstream

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background job (drain) that outlives the request; cancelled at shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def record_probe(self, backend: Backend, *, ok: bool) -> None:
        change = Pool.record(backend, ok, eject_after=self.config.eject_after,
                             restore_after=self.config.restore_after)
        if change == "ejected":
            log.warning("%s backend %s ejected after %d failed health checks",
                        backend.role, backend.address, backend.consecutive_failures)
        elif change == "restored":
            log.warning("%s backend %s restored after %d good health checks",
                        backend.role, backend.address, backend.consecutive_successes)

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

    async def _probe(self, backend: Backend) -> None:
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
            await asyncio.gather(*(self._probe(b) for b in backends))
            await asyncio.sleep(self.config.health_interval_s)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type=JSON_TYPE)


class Handlers:
    """Route handlers over a ProxyState."""

    def __init__(self, state: ProxyState) -> None:
        self.state = state
        self.relay = Relay(state)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self.relay.handle(request, "/v1/completions")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self.relay.handle(request, "/v1/chat/completions")

    async def health(self, _request: web.Request) -> web.Response:
        pools = self.state.pools
        ready = all(pool.healthy() for pool in pools.values())
        return _json({
            "status": "ok" if ready else "unavailable",
            "backends": {role: [b.to_dict() for b in pool.backends]
                         for role, pool in pools.items()},
            "totals": self.state.totals(),
        }, 200 if ready else 503)

    async def metrics(self, _request: web.Request) -> web.Response:
        text = self.state.metrics.render(self.state.pools.values())
        return web.Response(text=text, content_type="text/plain",
                            headers={"X-Prometheus-Format": "0.0.4"})

    async def models(self, request: web.Request) -> web.Response:
        backends = [b for pool in self.state.pools.values() for b in pool.healthy()]
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        if self.state.config.backend_api_key:
            headers["Authorization"] = f"Bearer {self.state.config.backend_api_key}"
        timeout = self.state.config.health_timeout_s

        async def fetch(backend: Backend) -> list[dict[str, Any]]:
            try:
                async with await self.state.upstream.get(backend.address, "/v1/models",
                                                         timeout, headers) as resp:
                    data = json.loads(await resp.read())
                    return list(data.get("data") or []) if resp.status == 200 else []
            except (UpstreamError, ValueError, AttributeError):
                return []

        seen: dict[str, dict[str, Any]] = {}
        for models in await asyncio.gather(*(fetch(b) for b in backends)):
            for model in models:
                seen.setdefault(str(model.get("id")), model)
        if not seen:
            return error_response(503, "no healthy backend answered /v1/models",
                                  "ServiceUnavailableError")
        return _json({"object": "list", "data": list(seen.values())})

    def _authorized(self, request: web.Request) -> bool:
        token = self.state.config.admin_token
        if not token:
            return True
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    async def _admin_body(self, request: web.Request) -> tuple[Pool, list[BackendAddress]]:
        if not self._authorized(request):
            raise web.HTTPUnauthorized(text=json.dumps({"error": {
                "message": "admin token missing or wrong", "type": "AuthenticationError",
                "param": None, "code": 401}}), content_type=JSON_TYPE)
        try:
            body = await request.json()
            pool = self.state.pools[body["type"]]
            addresses = [BackendAddress.parse(str(a)) for a in body["instances"]]
        except (ValueError, KeyError, TypeError, UsageError) as exc:
            raise web.HTTPBadRequest(text=json.dumps({"error": {
                "message": f"expected {{\"type\": \"prefill\"|\"decode\", \"instances\": "
                           f"[\"host:port\"]}}: {exc}", "type": "BadRequestError",
                "param": None, "code": 400}}), content_type=JSON_TYPE) from None
        return pool, addresses

    async def add_instances(self, request: web.Request) -> web.Response:
        pool, addresses = await self._admin_body(request)
        added, unreachable = [], []
        for address in addresses:
            backend = Backend(address, pool.role)
            # Admit only what answers /health now; the prober keeps watching afterwards.
            await self.state._probe(backend)
            if backend.consecutive_failures:
                unreachable.append(str(address))
                continue
            pool.add(address)
            added.append(str(address))
            log.warning("%s backend %s added", pool.role, address)
        status = 200 if added or not unreachable else 502
        return _json({"added": added, "unreachable": unreachable,
                      "backends": [str(b.address) for b in pool.backends]}, status)

    async def remove_instances(self, request: web.Request) -> web.Response:
        pool, addresses = await self._admin_body(request)
        removed = [str(a) for a in addresses if pool.remove(a) is not None]
        for name in removed:
            log.warning("%s backend %s removed", pool.role, name)
        return _json({"removed": removed,
                      "backends": [str(b.address) for b in pool.backends]})


def create_app(config: ProxyConfig) -> web.Application:
    """Build the proxy application (the upstream session lives in its cleanup context)."""
    state = ProxyState(config)
    handlers = Handlers(state)
    app = web.Application(client_max_size=config.max_body_bytes)
    app[STATE_KEY] = state
    app.router.add_post("/v1/completions", handlers.completions)
    app.router.add_post("/v1/chat/completions", handlers.chat)
    app.router.add_get("/v1/models", handlers.models)
    app.router.add_get("/health", handlers.health)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_post("/instances/add", handlers.add_instances)
    app.router.add_post("/instances/remove", handlers.remove_instances)
    app.cleanup_ctx.append(state.lifecycle)
    return app
