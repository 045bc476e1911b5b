"""The floor for the proxy benchmark: an aiohttp relay doing only the P->D hot path.

No balancing (plain round robin), retries, metrics, access log or health checks: whatever the
real proxy adds on top of this relay's latency is the cost of its own logic. Run:
``python benchmarks/aiohttp_relay.py PORT P1,P2 D1,D2 [--uvloop]`` (host:port lists).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import uuid
from typing import Any

import aiohttp
from aiohttp import web


def serve(port: int, prefills: list[str], decodes: list[str], uvloop: bool) -> None:
    """Serve the relay on 127.0.0.1:PORT until killed."""
    p_cycle, d_cycle = itertools.cycle(prefills), itertools.cycle(decodes)
    kv_leg = {"do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
              "remote_block_ids": None, "remote_host": None, "remote_port": None}

    async def relay(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        body = json.loads(await request.read())
        headers = {"Content-Type": "application/json", "X-Request-Id": str(uuid.uuid4())}
        leg = {**body, "stream": False, "max_tokens": 1, "min_tokens": 1,
               "kv_transfer_params": kv_leg}
        async with session.post(f"http://{next(p_cycle)}{request.path}",
                                data=json.dumps(leg), headers=headers) as resp:
            kv = json.loads(await resp.read())["kv_transfer_params"]
        async with session.post(f"http://{next(d_cycle)}{request.path}",
                                data=json.dumps({**body, "kv_transfer_params": kv}),
                                headers=headers) as resp:
            if not body.get("stream"):
                return web.Response(status=resp.status, body=await resp.read(),
                                    content_type="application/json")
            out = web.StreamResponse(status=resp.status,
                                     headers={"Content-Type": resp.headers["Content-Type"]})
            await out.prepare(request)
            while chunk := await resp.content.readany():
                await out.write(chunk)
            await out.write_eof()
            return out

    async def session_ctx(app: web.Application) -> Any:
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app["session"].close()

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/completions", relay)
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(session_ctx)
    if uvloop:
        import uvloop as uv  # type: ignore[import-not-found, unused-ignore]

        asyncio.set_event_loop_policy(uv.EventLoopPolicy())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(","),
          "--uvloop" in sys.argv[4:])
