"""The decode-first (layerwise) flow: D first, then P through the proxy's ``/v1/metaserver``.

vllm-ascend's MooncakeLayerwiseConnector contract (its
``examples/disaggregated_prefill_v1/load_balance_proxy_layerwise_server_example.py`` at
v0.23.0 and on main in 2026-08; the connector's ``update_state_after_alloc``):

1. the proxy sends the request to a decode with ``kv_transfer_params = {do_remote_decode:
   false, do_remote_prefill: true, metaserver: "http://<proxy>/v1/metaserver"}``;
2. the decode allocates blocks and POSTs its block info to the metaserver: a dict with
   ``request_id`` (``cmpl-<X-Request-Id>-0`` / ``chatcmpl-<X-Request-Id>``),
   ``remote_block_ids``, ``remote_host``, ``remote_port``, ``remote_cached_tokens``, ...;
3. the proxy sends the prefill the request with *that dict* as ``kv_transfer_params``
   (max_tokens 1, not streamed); P pushes the KV into D's blocks layer by layer;
4. the client gets the decode's output.

The guarantees of the prefill-first flow hold here too: a decode that fails before its
first byte is retried (same id when the request never reached it, else a new id, so a new
metaserver call and a new prefill); a prefill that fails ends the decode leg (D would wait
for KV that never comes) and the client gets the prefill's error; a client that leaves
cancels both legs (D and P abort and free their blocks: nothing is held for a pull in this
flow). The backend request id carries a random suffix so that nobody but the decode that
got the request can name it to the metaserver (which makes P push KV to the address given).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ascend_pd.proxy import contract, inbound
from ascend_pd.proxy.affinity import prefill_keys
from ascend_pd.proxy.legs import Answer, Leg, LegFailed, Legs
from ascend_pd.proxy.state import ProxyState
from ascend_pd.proxy.trace import JSON_TYPE, Reply, Trace, error_response

log = logging.getLogger("ascend_pd.proxy")


def metaserver_key(backend_rid: str, *, chat: bool) -> str:
    """The ``request_id`` a decode posts for an API request sent with ``X-Request-Id``."""
    return f"chatcmpl-{backend_rid}" if chat else f"cmpl-{backend_rid}-0"


@dataclass(eq=False)
class Pending:
    """A decode leg waiting for its metaserver call, and the prefill that call starts."""

    body: dict[str, Any]
    headers: dict[str, str]
    trace: Trace
    failed: asyncio.Future[web.StreamResponse] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    prefill: asyncio.Task[None] | None = None


class DecodeFirst:
    """Runs decode-first pairs and serves ``POST /v1/metaserver``."""

    def __init__(self, state: ProxyState, legs: Legs) -> None:
        self.state = state
        self.legs = legs
        self.pending: dict[str, Pending] = {}

    # -- the pair ------------------------------------------------------------------------
    async def pair(self, body: dict[str, Any], headers: dict[str, str], trace: Trace, *,
                   stream: bool) -> Answer:
        """The decode's 2xx Answer (stream still open) once P delivered the KV."""
        pairs = self.state.config.max_retries + 1
        for pair in range(pairs):
            for role in ("decode", "prefill"):
                if not self.state.pools[role].healthy():
                    raise Reply(error_response(503, f"no healthy {role} backend",
                                               "ServiceUnavailableError", trace.request_id),
                                f"no_{role}")
            try:
                return await self._attempt(body, headers, trace, stream=stream)
            except LegFailed as failed:
                if not failed.sent or pair + 1 == pairs:
                    raise
                trace.retries += 1
                self.state.metrics.inc("ascend_pd_proxy_retries_total", role="pair")
        raise AssertionError("unreachable: the last pair returns or raises")

    async def _attempt(self, body: dict[str, Any], headers: dict[str, str], trace: Trace, *,
                       stream: bool) -> Answer:
        backend_rid = f"{trace.request_id}-{secrets.token_hex(6)}"
        key = metaserver_key(backend_rid, chat="messages" in body)
        leg_headers = {**headers, "X-Request-Id": backend_rid}
        pending = Pending(body, leg_headers, trace)
        self.pending[key] = pending
        url = self.state.metaserver_url
        payload = dict(body)
        payload["kv_transfer_params"] = {"do_remote_decode": False, "do_remote_prefill": True,
                                         "metaserver": url}
        leg = Leg("decode", trace.endpoint, json.dumps(payload).encode(), leg_headers,
                  stream=stream, attempts=self.state.config.max_retries + 1,
                  avoid=list(trace.failed_decodes), unsent_only=True)
        decode = asyncio.ensure_future(self.legs.send(leg, trace))
        handed = False
        try:
            waits: set[asyncio.Future[Any]] = {decode, pending.failed}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not decode.done():  # the prefill failed: D would wait for KV forever
                raise Reply(pending.failed.result(), "prefill_failed")
            answer = decode.result()
            handed = True
            return answer
        finally:
            self.pending.pop(key, None)
            if not decode.done():
                decode.cancel()  # closes the leg: D aborts and frees its blocks
                await asyncio.gather(decode, return_exceptions=True)
            elif not handed and not decode.cancelled() and decode.exception() is None:
                decode.result().close()
            if pending.prefill is not None and not pending.prefill.done() and not handed:
                pending.prefill.cancel()  # P aborts; nothing waits for its KV any more

    # -- the metaserver ------------------------------------------------------------------
    async def metaserver(self, request: web.Request) -> web.Response:
        """``POST /v1/metaserver`` from a decode: run the prefill that fills its blocks."""
        try:
            params = inbound.parse_body(await request.read())
        except inbound.BadRequest as exc:
            return _json({"error": str(exc)}, 400)
        pending = self.pending.get(str(params.get("request_id")))
        if pending is None:
            return _json({"error": f"unknown request_id {params.get('request_id')!r}"}, 404)
        if pending.prefill is None:
            pending.prefill = asyncio.get_running_loop().create_task(
                self._prefill(pending, params))
        try:
            await asyncio.shield(pending.prefill)
        except (Reply, asyncio.CancelledError):
            return _json({"error": "the prefill failed"}, 502)
        return _json({"status": "ok"})

    async def _prefill(self, pending: Pending, params: dict[str, Any]) -> None:
        body = contract.prefill_body(pending.body)
        body["kv_transfer_params"] = params  # D's block info, as the decode sent it
        leg = Leg("prefill", pending.trace.endpoint, json.dumps(body).encode(),
                  pending.headers, tokens=contract.estimate_prompt_tokens(pending.body),
                  attempts=self.state.config.max_retries + 1,
                  keys=prefill_keys(self.state.config.policy_prefill, pending.body))
        try:
            answer = await self.legs.send(leg, pending.trace)
        except Reply as reply:
            if not pending.failed.done():
                pending.failed.set_result(reply.response)
            raise
        answer.close()


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type=JSON_TYPE)
