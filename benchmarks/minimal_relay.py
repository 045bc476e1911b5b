"""The floor for the proxy benchmark: an aiohttp server relaying only the P->D hot path.

No balancing (plain round robin), retries, metrics, access log or health checks: whatever the
real proxy adds on top of this relay's latency is the cost of its own logic. The upstream
legs use either aiohttp's client or the proxy's own (``ascend_pd.proxy.upstream``), which is
how the two clients were compared. Run:
``python benchmarks/minimal_relay.py PORT P1,P2 D1,D2 [--client aiohttp|upstream] [--uvloop]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from ascend_pd.proxy import contract
from ascend_pd.proxy.config import BackendAddress
from ascend_pd.proxy.upstream import UpstreamClient

#: (status, content type, first bytes, read-more) of one upstream POST
Posted = tuple[int, str, bytes, Callable[[], Awaitable[bytes]]]


def aiohttp_poster(app: web.Application) -> Callable[..., Awaitable[Posted]]:
    async def post(address: BackendAddress, path: str, payload: bytes,
                   headers: dict[str, str], whole: bool) -> Posted:
        resp = await app["session"].post(address.url + path, data=payload, headers=headers)
        first = await (resp.read() if whole else resp.content.readany())
        return resp.status, resp.headers["Content-Type"], first, resp.content.readany
    return post


def upstream_poster(client: UpstreamClient) -> Callable[..., Awaitable[Posted]]:
    async def post(address: BackendAddress, path: str, payload: bytes,
                   headers: dict[str, str], whole: bool) -> Posted:
        resp = await client.request("POST", address, path, body=payload, headers=headers)
        first = await (resp.read() if whole else resp.readany())
        return resp.status, resp.headers["content-type"], first, resp.readany
    return post


def build(prefills: list[str], decodes: list[str], client: str) -> web.Application:
    p_cycle = itertools.cycle([BackendAddress.parse(p) for p in prefills])
    d_cycle = itertools.cycle([BackendAddress.parse(d) for d in decodes])
    app = web.Application()
    posters: dict[str, Callable[..., Awaitable[Posted]]] = {}

    async def relay(request: web.Request) -> web.StreamResponse:
        post = posters["post"]
        body = json.loads(await request.read())
        headers = {"Content-Type": "application/json", "X-Request-Id": str(uuid.uuid4())}
        leg = contract.prefill_body(body)
        _s, _t, data, _more = await post(next(p_cycle), request.path,
                                         json.dumps(leg).encode(), headers, True)
        kv = json.loads(data)["kv_transfer_params"]
        payload = json.dumps(contract.decode_body(body, kv)).encode()
        stream = bool(body.get("stream"))
        status, ctype, data, more = await post(next(d_cycle), request.path, payload, headers,
                                               not stream)
        if not stream:
            return web.Response(status=status, body=data, headers={"Content-Type": ctype})
        out = web.StreamResponse(status=status, headers={"Content-Type": ctype})
        await out.prepare(request)
        while data:
            await out.write(data)
            data = await more()
        await out.write_eof()
        return out

    async def clients(app: web.Application) -> AsyncIterator[None]:
        if client == "aiohttp":
            app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            posters["post"] = aiohttp_poster(app)
            yield
            await app["session"].close()
        else:
            upstream = UpstreamClient()
            posters["post"] = upstream_poster(upstream)
            yield
            await upstream.close()

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_post("/v1/completions", relay)
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(clients)
    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("prefills")
    ap.add_argument("decodes")
    ap.add_argument("--client", choices=("aiohttp", "upstream"), default="upstream")
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop  # type: ignore[import-not-found, unused-ignore]

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = build(args.prefills.split(","), args.decodes.split(","), args.client)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
