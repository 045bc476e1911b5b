"""A minimal P->D relay on starlette + uvicorn + httpx, for the stack comparison only.

It does what the proxy's hot path does (prefill leg, copy kv_transfer_params, stream the
decode back) and nothing else: no retries, health checks or metrics. If even this is slower
than the full aiohttp proxy, the stack choice is settled. Run:
``python benchmarks/starlette_relay.py PORT P1,P2 D1,D2`` (host:port lists).
"""

from __future__ import annotations

import itertools
import json
import sys
import uuid
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(prefills: list[str], decodes: list[str]) -> Starlette:
    p_cycle, d_cycle = itertools.cycle(prefills), itertools.cycle(decodes)
    limits = httpx.Limits(max_connections=100000, max_keepalive_connections=100000)
    client = httpx.AsyncClient(timeout=None, limits=limits)

    async def relay(request: Request) -> Response:
        body = json.loads(await request.body())
        headers = {"X-Request-Id": str(uuid.uuid4())}
        leg = {**body, "stream": False, "max_tokens": 1, "min_tokens": 1,
               "kv_transfer_params": {"do_remote_decode": True, "do_remote_prefill": False}}
        leg.pop("stream_options", None)
        p = await client.post(f"http://{next(p_cycle)}{request.url.path}", json=leg,
                              headers=headers)
        body["kv_transfer_params"] = p.json()["kv_transfer_params"]
        req = client.build_request("POST", f"http://{next(d_cycle)}{request.url.path}",
                                   json=body, headers=headers)
        upstream = await client.send(req, stream=True)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        return StreamingResponse(chunks(), status_code=upstream.status_code,
                                 media_type=upstream.headers.get("content-type"))

    return Starlette(routes=[Route("/v1/completions", relay, methods=["POST"]),
                             Route("/v1/chat/completions", relay, methods=["POST"]),
                             Route("/health", lambda r: Response("ok"))])


if __name__ == "__main__":
    port, prefills, decodes = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(",")
    uvicorn.run(build(prefills, decodes), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)
