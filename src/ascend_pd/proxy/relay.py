"""One client request through the proxy: the prefill leg, the decode leg, and what can go wrong.

Rules this module keeps (reference §8.4, §8.5):

* Accounting is released in ``finally`` on every path: success, upstream error, timeout and
  client cancellation (``CancelledError`` from aiohttp's handler cancellation).
* A leg is retried on *another* backend for connect errors, timeouts and 5xx -- never for
  4xx, and never once the first byte reached the client.
* Upstream errors reach the client with their status and body; a prefill answer without
  ``kv_transfer_params`` is a 502, not a silent local prefill on D.
* Decode bytes are relayed as received, with the decode's content type. A decode dying
  mid-stream ends the client stream with an SSE ``error`` event and no ``[DONE]``.
* A request abandoned after P answered (client gone, or every decode failed) gets a *drain*
  leg: the same kv_transfer_params sent to a decode with max_tokens 1, output discarded, so
  P frees its blocks now rather than at its abort timeout. It works against real vLLM too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from ascend_pd.proxy import contract
from ascend_pd.proxy.affinity import prefix_keys
from ascend_pd.proxy.legs import Answer, Leg, Legs, passthrough
from ascend_pd.proxy.state import ProxyState
from ascend_pd.proxy.stream import (
    StreamPump,
    UpstreamBroken,
    merge_recomputed,
    recomputed_choice,
)
from ascend_pd.proxy.trace import (
    JSON_TYPE,
    Reply,
    Trace,
    error_response,
    finish_trace,
    new_request_id,
)

log = logging.getLogger("ascend_pd.proxy")


class Relay:
    """The two-leg relay over the shared ProxyState (pools, metrics, upstream client)."""

    def __init__(self, state: ProxyState) -> None:
        self.state = state
        self.legs = Legs(state)

    # -- entry -------------------------------------------------------------------------
    async def handle(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        """Serve one ``/v1/completions`` or ``/v1/chat/completions`` request."""
        rid = request.headers.get("X-Request-Id") or new_request_id()
        trace = Trace(rid, endpoint)
        metrics = self.state.metrics
        response: web.StreamResponse | None = None
        body: dict[str, Any] | None = None
        headers: dict[str, str] = {}
        try:
            try:
                body = await self._read_body(request, rid)
                trace.stream = bool(body.get("stream"))
                headers = self.state.backend_headers(request.headers, rid)
                kv = await self.prefill(body, headers, trace)
                trace.kv_pending = kv
                if trace.stream:
                    response = await self.stream_decode(request, body, kv, headers, trace)
                else:
                    response = await self.decode_full(body, kv, headers, trace)
            except Reply as reply:
                trace.outcome = reply.outcome
                response = reply.response
            if not response.prepared:
                # Send it now (headers and body in one write) so that the bookkeeping in
                # ``finally`` runs after the client has its answer, not before.
                await response.prepare(request)
                await response.write_eof()
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the client goes away; the in-flight leg's
            # connection is closed by the unwinding ``async with`` / ``finally`` blocks.
            trace.outcome, trace.status = "client_disconnected", 499
            metrics.inc("ascend_pd_proxy_client_disconnects_total")
            raise
        except ConnectionResetError:
            # A write to a client that left; nothing more can be sent to it.
            trace.outcome, trace.status = "client_disconnected", 499
            metrics.inc("ascend_pd_proxy_client_disconnects_total")
            response = web.Response(status=499)
        finally:
            if response is not None:
                trace.status = trace.status or response.status
            if trace.kv_pending is not None and self.state.config.drain_on_disconnect:
                self.state.spawn(self.drain(body, headers, trace))
            finish_trace(trace, metrics)
        return response

    async def _read_body(self, request: web.Request, rid: str) -> dict[str, Any]:
        raw = await request.read()  # aiohttp answers 413 itself above client_max_size
        try:
            body = json.loads(raw)
        except ValueError:
            raise Reply(error_response(400, "request body is not valid JSON",
                                       "BadRequestError", rid), "bad_request") from None
        if not isinstance(body, dict):
            raise Reply(error_response(400, "request body must be a JSON object",
                                       "BadRequestError", rid), "bad_request")
        return body

    # -- prefill -----------------------------------------------------------------------
    async def prefill(self, body: dict[str, Any], headers: dict[str, str], trace: Trace,
                      ) -> dict[str, Any]:
        """Run the prefill leg (with retries); the kv_transfer_params P returned."""
        leg = Leg("prefill", trace.endpoint, json.dumps(contract.prefill_body(body)).encode(),
                  headers, tokens=contract.estimate_prompt_tokens(body),
                  attempts=self.state.config.max_retries + 1,
                  keys=prefix_keys(body) if self.state.config.policy_prefill == "cache_aware"
                  else ())
        answer = await self.legs.send(leg, trace)
        try:
            kv = json.loads(answer.data).get("kv_transfer_params")
        except (ValueError, AttributeError):
            kv = None
        if not isinstance(kv, dict):
            name = str(answer.backend.address)
            self.state.metrics.inc("ascend_pd_proxy_missing_kv_params_total", backend=name)
            log.error("prefill %s answered request %s without kv_transfer_params",
                      name, trace.request_id)
            raise Reply(error_response(
                502, f"prefill {name} returned no kv_transfer_params; is it started with "
                "kv_role kv_producer and a KV connector?", "BadGatewayError",
                trace.request_id), "missing_kv_params")
        return kv

    # -- decode ------------------------------------------------------------------------
    def _decode_leg(self, body: dict[str, Any], kv: dict[str, Any], headers: dict[str, str],
                    trace: Trace, *, stream: bool) -> Leg:
        return Leg("decode", trace.endpoint,
                   json.dumps(contract.decode_body(body, kv)).encode(), headers, stream=stream,
                   attempts=self.state.config.max_retries + 1)

    async def _decode(self, leg: Leg, trace: Trace) -> Answer:
        try:
            return await self.legs.send(leg, trace)
        except Reply as reply:
            if reply.outcome == "decode_rejected":
                trace.kv_pending = None  # D saw the params and refused them
            raise

    async def decode_full(self, body: dict[str, Any], kv: dict[str, Any],
                          headers: dict[str, str], trace: Trace) -> web.Response:
        """Non-streaming decode leg, with recompute rounds merged into one answer."""
        parts: list[dict[str, Any]] = []
        current = body
        while True:
            answer = await self._decode(
                self._decode_leg(current, kv, headers, trace, stream=False), trace)
            resp, data = answer.response, answer.data
            trace.kv_pending = None
            choice = recomputed_choice(data) if contract.can_recompute(body) else None
            if choice is None or trace.recomputes >= self.state.config.max_recomputes:
                if not parts:
                    return passthrough(resp.status, data, resp.headers, trace.request_id)
                parts.append(json.loads(data))
                merged = merge_recomputed(parts, chat="messages" in body)
                return web.Response(status=resp.status, text=json.dumps(merged),
                                    content_type=JSON_TYPE,
                                    headers={"X-Request-Id": trace.request_id})
            parts.append(json.loads(data))
            merged = merge_recomputed(parts, chat="messages" in body)
            current, kv = await self._recompute(body, merged, headers, trace)

    async def _recompute(self, body: dict[str, Any], merged: dict[str, Any],
                         headers: dict[str, str], trace: Trace,
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Re-prefill prompt + generated text; returns the continuation body and its kv."""
        trace.recomputes += 1
        self.state.metrics.inc("ascend_pd_proxy_recomputes_total")
        choice = merged["choices"][0]
        text = (choice.get("message") or {}).get("content") if "messages" in body \
            else choice.get("text")
        done = int((merged.get("usage") or {}).get("completion_tokens") or 0)
        remaining = max(1, contract.requested_max_tokens(body) - done)
        current = contract.continuation_body(body, text or "", remaining)
        kv = await self.prefill(current, headers, trace)
        trace.kv_pending = kv
        return current, kv

    async def stream_decode(self, request: web.Request, body: dict[str, Any],
                            kv: dict[str, Any], headers: dict[str, str], trace: Trace,
                            ) -> web.StreamResponse:
        """Streaming decode leg: relay bytes; recompute rounds continue the same stream."""
        recompute = contract.can_recompute(body)
        pump: StreamPump | None = None
        current = body
        while True:
            leg = self._decode_leg(current, kv, headers, trace, stream=True)
            try:
                answer = await self._decode(leg, trace)
            except Reply as reply:
                if pump is None:
                    raise
                # Bytes already went out: the only honest ending is an error event.
                await pump.fail(f"recompute continuation failed: HTTP {reply.response.status}")
                trace.outcome = "recompute_failed"
                return pump.response
            trace.kv_pending = None
            try:
                if pump is None:
                    pump = StreamPump(request, answer.response, trace.request_id,
                                      recompute and self.state.config.max_recomputes > 0)
                    await pump.start()
                result = await pump.relay(answer.response, answer.data,
                                          allow_recompute=recompute and trace.recomputes
                                          < self.state.config.max_recomputes)
            except UpstreamBroken as broken:
                self.legs.failed_mid_stream(answer, leg, trace, broken.cause)
                trace.outcome = "decode_died_mid_stream"
                assert pump is not None
                await pump.fail(f"decode {answer.backend.address} failed mid-stream: "
                                f"{broken.cause!r}")
                return pump.response
            finally:
                answer.close()
            if result is None:
                await pump.finish()
                return pump.response
            text, done = result
            merged = {"choices": [{"text": text, "message": {"content": text}}],
                      "usage": {"completion_tokens": done}}
            try:
                current, kv = await self._recompute(body, merged, headers, trace)
            except Reply as reply:
                await pump.fail(f"recompute re-prefill failed: HTTP {reply.response.status}")
                trace.outcome = "recompute_failed"
                return pump.response

    # -- drain -------------------------------------------------------------------------
    async def drain(self, body: dict[str, Any] | None, headers: dict[str, str],
                    trace: Trace) -> None:
        """Send the abandoned kv_transfer_params to a decode with max_tokens 1; discard output."""
        kv = trace.kv_pending
        if kv is None or body is None:
            return
        if not self.state.pools["decode"].healthy():
            log.warning("cannot drain request %s: no healthy decode", trace.request_id)
            return
        leg = Leg("drain", trace.endpoint, json.dumps(contract.drain_body(body, kv)).encode(),
                  headers, avoid=list(trace.failed_decodes))
        try:
            answer = await self.legs.send(leg, trace)
            outcome, where = "ok", str(answer.backend.address)
        except Reply as reply:
            status = reply.response.status
            outcome = f"http_{status}" if reply.outcome == "drain_rejected" else "error"
            where = "-"
        self.state.metrics.inc("ascend_pd_proxy_drains_total", outcome=outcome)
        log.info("drained KV of abandoned request %s via %s: %s", trace.request_id, where,
                 outcome)
