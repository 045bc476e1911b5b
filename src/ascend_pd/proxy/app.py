"""The proxy's aiohttp application: routes, shared state, health probing and admin endpoints.

Routes: ``POST /v1/completions`` and ``/v1/chat/completions`` (relayed P then D),
``GET /v1/models`` (merged from healthy backends), ``GET /health`` (200 when at least one
prefill and one decode take traffic, with a per-backend summary), ``GET /metrics``
(Prometheus), ``POST /instances/add`` and ``/instances/remove`` (body
``{"type": "prefill"|"decode", "instances": ["host:port", ...]}``, ``proxy.admin``: closed
unless an admin token is configured or the proxy listens on loopback only). Every request
passes the connection guard's middleware (``proxy.connguard``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from ascend_pd.proxy.admin import Admin
from ascend_pd.proxy.balancer import Backend
from ascend_pd.proxy.config import ProxyConfig
from ascend_pd.proxy.connguard import guard_middleware
from ascend_pd.proxy.relay import Relay
from ascend_pd.proxy.state import ProxyState
from ascend_pd.proxy.trace import JSON_TYPE, error_response, new_request_id
from ascend_pd.proxy.upstream import UpstreamError
from ascend_pd.proxy.workers import cluster_metrics

log = logging.getLogger("ascend_pd.proxy")

STATE_KEY: web.AppKey[ProxyState] = web.AppKey("ascend_pd_proxy_state")


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
            "admission": self.state.admission.to_dict(),
            "connections": self.state.guard.to_dict(),
            "worker": self.state.worker,
        }, 200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        state = self.state
        text = "\n".join([state.metrics.render(state.pools.values()).rstrip("\n"),
                          *state.admission.metric_lines(), *state.guard.metric_lines()]) + "\n"
        if state.worker is not None and not request.query.get("local"):
            text = await cluster_metrics(state.worker, state.peers, text)
        return web.Response(text=text, content_type="text/plain",
                            headers={"X-Prometheus-Format": "0.0.4"})

    async def models(self, request: web.Request) -> web.Response:
        backends = [b for pool in self.state.pools.values() for b in pool.healthy()]
        rid = request.headers.get("X-Request-Id") or new_request_id()
        headers = self.state.backend_headers(request.headers, rid)
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


def create_app(config: ProxyConfig) -> web.Application:
    """Build the proxy application (the upstream session lives in its cleanup context)."""
    state = ProxyState(config)
    handlers = Handlers(state)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[
        guard_middleware(state.guard, body_timeout_s=config.body_timeout_s)])
    app[STATE_KEY] = state
    app.router.add_post("/v1/completions", handlers.completions)
    app.router.add_post("/v1/chat/completions", handlers.chat)
    app.router.add_get("/v1/models", handlers.models)
    app.router.add_get("/health", handlers.health)
    app.router.add_get("/metrics", handlers.metrics)
    admin = Admin(state)
    app.router.add_post("/instances/add", admin.add)
    app.router.add_post("/instances/remove", admin.remove)
    if handlers.relay.decode_first is not None:
        app.router.add_post("/v1/metaserver", handlers.relay.decode_first.metaserver)
    app.cleanup_ctx.append(state.lifecycle)
    return app
