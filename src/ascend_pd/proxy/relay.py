"""One client request through the proxy: the prefill leg, the decode leg, and what can go wrong.

Rules this module keeps (defects of load_balance_proxy_server_example.py):

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
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ascend_pd.proxy import contract
from ascend_pd.proxy.balancer import Backend
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
from ascend_pd.proxy.upstream import (
    ConnectFailed,
    UpstreamClosed,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)

if TYPE_CHECKING:
    from ascend_pd.proxy.app import ProxyState

log = logging.getLogger("ascend_pd.proxy")


class Relay:
    """The two-leg relay over the shared ProxyState (pools, metrics, upstream client)."""

    def __init__(self, state: ProxyState) -> None:
        self.state = state

    # -- entry -------------------------------------------------------------------------
    async def handle(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        """Serve one ``/v1/completions`` or ``/v1/chat/completions`` request."""
        rid = request.headers.get("X-Request-Id") or new_request_id()
        trace = Trace(rid, endpoint)
        metrics = self.state.metrics
        response: web.StreamResponse | None = None
        body: dict[str, Any] | None = None
        try:
            try:
                body = await self._read_body(request, rid)
                trace.stream = bool(body.get("stream"))
                headers = self._backend_headers(request, rid)
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
                self.state.spawn(self.drain(body, trace))
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

    def _backend_headers(self, request: web.Request, rid: str) -> dict[str, str]:
        headers = {"Content-Type": JSON_TYPE, "X-Request-Id": rid}
        key = self.state.config.backend_api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif "Authorization" in request.headers:  # never invent one ('Bearer None')
            headers["Authorization"] = request.headers["Authorization"]
        return headers

    # -- helpers -----------------------------------------------------------------------
    def _leg_failed(self, backend: Backend, role: str, exc: BaseException | None) -> None:
        self.state.metrics.inc("ascend_pd_proxy_errors_total", role=role,
                               backend=str(backend.address))
        if isinstance(exc, ConnectFailed):
            # A refused connect is as good as a failed probe: stop sending traffic sooner.
            self.state.record_probe(backend, ok=False)

    def _pick(self, role: str, tried: list[Backend], trace: Trace) -> Backend | None:
        """The next backend for an attempt (not one already tried), recorded as tried, in
        the trace and in the metrics; None when none is left."""
        backend = self.state.pools[role].choose(exclude=tried)
        if backend is None:
            return None
        if tried:
            trace.retries += 1
            self.state.metrics.inc("ascend_pd_proxy_retries_total", role=role)
        tried.append(backend)
        setattr(trace, role, str(backend.address))
        self.state.metrics.inc("ascend_pd_proxy_requests_total", role=role,
                               backend=str(backend.address))
        return backend

    def _passthrough(self, status: int, data: bytes, headers: dict[str, str], rid: str,
                     ) -> web.Response:
        out = {"Content-Type": headers.get("content-type", JSON_TYPE), "X-Request-Id": rid}
        return web.Response(status=status, body=data, headers=out)

    @staticmethod
    def _unavailable(role: str, last: web.Response | None, rid: str) -> web.Response:
        return last or error_response(
            503, f"no healthy {role} backend (all ejected or all attempts failed)",
            "ServiceUnavailableError", rid)

    # -- prefill -----------------------------------------------------------------------
    async def prefill(self, body: dict[str, Any], headers: dict[str, str], trace: Trace,
                      ) -> dict[str, Any]:
        """Run the prefill leg (with retries); the kv_transfer_params P returned."""
        state, pool = self.state, self.state.pools["prefill"]
        tokens = contract.estimate_prompt_tokens(body)
        payload = json.dumps(contract.prefill_body(body)).encode()
        tried: list[Backend] = []
        last: web.Response | None = None
        for _attempt in range(state.config.max_retries + 1):
            backend = self._pick("prefill", tried, trace)
            if backend is None:
                break
            name = str(backend.address)
            pool.acquire(backend, tokens)
            t = time.perf_counter()
            cfg = state.config
            try:
                async with await state.upstream.request(
                        "POST", backend.address, trace.endpoint,
                        body=payload, headers=headers, connect_timeout=cfg.connect_timeout_s,
                        read_timeout=cfg.prefill_timeout_s,
                        total_timeout=cfg.prefill_timeout_s) as resp:
                    data = await resp.read()
            except UpstreamError as exc:
                self._leg_failed(backend, "prefill", exc)
                status = 504 if isinstance(exc, UpstreamTimeout) else 502
                last = error_response(status, f"prefill {name} failed: {exc}",
                                      "BadGatewayError", trace.request_id)
                continue
            finally:
                pool.release(backend, tokens)
                elapsed = time.perf_counter() - t
                state.metrics.observe("ascend_pd_proxy_prefill_latency_seconds", elapsed,
                                      backend=name)
            if resp.status >= 400:
                self._leg_failed(backend, "prefill", None)
                last = self._passthrough(resp.status, data, resp.headers, trace.request_id)
                if resp.status >= 500:
                    continue
                raise Reply(last, "prefill_rejected")
            trace.prefill_ms = round(elapsed * 1000, 3)
            try:
                kv = json.loads(data).get("kv_transfer_params")
            except (ValueError, AttributeError):
                kv = None
            if not isinstance(kv, dict):
                state.metrics.inc("ascend_pd_proxy_missing_kv_params_total", backend=name)
                log.error("prefill %s answered request %s without kv_transfer_params",
                          name, trace.request_id)
                raise Reply(error_response(
                    502, f"prefill {name} returned no kv_transfer_params; is it started with "
                    "kv_role kv_producer and a KV connector?", "BadGatewayError",
                    trace.request_id), "missing_kv_params")
            return kv
        raise Reply(self._unavailable("prefill", last, trace.request_id), "prefill_failed")

    # -- decode ------------------------------------------------------------------------
    async def _decode_attempts(self, payload: bytes, headers: dict[str, str], trace: Trace,
                               endpoint: str, stream: bool,
                               ) -> tuple[Backend, UpstreamResponse, bytes]:
        """Open a decode leg (with retries) until its first bytes (stream) or whole body.

        Returns the backend (acquired: the caller releases it), the response and the bytes.
        """
        state, pool = self.state, self.state.pools["decode"]
        tried: list[Backend] = []
        last: web.Response | None = None
        for _attempt in range(state.config.max_retries + 1):
            backend = self._pick("decode", tried, trace)
            if backend is None:
                break
            name = str(backend.address)
            pool.acquire(backend)
            t = time.perf_counter()
            resp: UpstreamResponse | None = None
            keep = False
            cfg = state.config
            try:
                resp = await state.upstream.request(
                    "POST", backend.address, endpoint,
                    body=payload, headers=headers, connect_timeout=cfg.connect_timeout_s,
                    read_timeout=cfg.decode_read_timeout_s)
                if resp.status >= 400:
                    data = await resp.read()
                    self._leg_failed(backend, "decode", None)
                    last = self._passthrough(resp.status, data, resp.headers, trace.request_id)
                    if resp.status >= 500:
                        trace.failed_decodes.append(backend)
                        continue
                    trace.kv_pending = None  # D saw the params and refused them
                    raise Reply(last, "decode_rejected")
                first = await (resp.readany() if stream else resp.read())
                if stream and not first:
                    raise UpstreamClosed("decode ended its stream before any byte")
                state.metrics.observe("ascend_pd_proxy_decode_first_byte_seconds",
                                      time.perf_counter() - t, backend=name)
                if trace.first_byte_ms is None:
                    trace.first_byte_ms = round((time.perf_counter() - trace.t0) * 1000, 3)
                keep = True
                return backend, resp, first
            except asyncio.CancelledError:
                trace.failed_decodes.append(backend)  # it may hang: drain elsewhere
                raise
            except UpstreamError as exc:
                self._leg_failed(backend, "decode", exc)
                trace.failed_decodes.append(backend)
                status = 504 if isinstance(exc, UpstreamTimeout) else 502
                last = error_response(status, f"decode {name} failed: {exc}",
                                      "BadGatewayError", trace.request_id)
            finally:
                if not keep:
                    pool.release(backend)
                    if resp is not None:
                        resp.close()
        raise Reply(self._unavailable("decode", last, trace.request_id), "decode_failed")

    async def decode_full(self, body: dict[str, Any], kv: dict[str, Any],
                          headers: dict[str, str], trace: Trace) -> web.Response:
        """Non-streaming decode leg, with recompute rounds merged into one answer."""
        parts: list[dict[str, Any]] = []
        current = body
        while True:
            payload = json.dumps(contract.decode_body(current, kv)).encode()
            backend, resp, data = await self._decode_attempts(
                payload, headers, trace, trace.endpoint, stream=False)
            self.state.pools["decode"].release(backend)
            resp.close()
            trace.kv_pending = None
            choice = recomputed_choice(data) if contract.can_recompute(body) else None
            if choice is None or trace.recomputes >= self.state.config.max_recomputes:
                if not parts:
                    return self._passthrough(resp.status, data, resp.headers, trace.request_id)
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
        pool = self.state.pools["decode"]
        recompute = contract.can_recompute(body)
        pump: StreamPump | None = None
        current = body
        while True:
            payload = json.dumps(contract.decode_body(current, kv)).encode()
            try:
                backend, resp, first = await self._decode_attempts(
                    payload, headers, trace, trace.endpoint, stream=True)
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
                    pump = StreamPump(request, resp, trace.request_id,
                                      recompute and self.state.config.max_recomputes > 0)
                    await pump.start()
                result = await pump.relay(resp, first,
                                          allow_recompute=recompute and trace.recomputes
                                          < self.state.config.max_recomputes)
            except UpstreamBroken as broken:
                self._leg_failed(backend, "decode", broken.cause)
                trace.outcome = "decode_died_mid_stream"
                assert pump is not None
                await pump.fail(f"decode {backend.address} failed mid-stream: {broken.cause!r}")
                return pump.response
            finally:
                pool.release(backend)
                resp.close()
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
    async def drain(self, body: dict[str, Any] | None, trace: Trace) -> None:
        """Send the abandoned kv_transfer_params to a decode with max_tokens 1; discard output."""
        kv, pool = trace.kv_pending, self.state.pools["decode"]
        if kv is None or body is None:
            return
        backend = pool.choose(exclude=trace.failed_decodes) or pool.choose()
        if backend is None:
            log.warning("cannot drain request %s: no healthy decode", trace.request_id)
            return
        payload = json.dumps(contract.drain_body(body, kv)).encode()
        headers = {"Content-Type": JSON_TYPE, "X-Request-Id": trace.request_id}
        if self.state.config.backend_api_key:
            headers["Authorization"] = f"Bearer {self.state.config.backend_api_key}"
        pool.acquire(backend)
        outcome = "error"
        cfg = self.state.config
        try:
            async with await self.state.upstream.request(
                    "POST", backend.address, trace.endpoint,
                    body=payload, headers=headers, connect_timeout=cfg.connect_timeout_s,
                    read_timeout=cfg.drain_timeout_s, total_timeout=cfg.drain_timeout_s) as resp:
                await resp.read()
                outcome = "ok" if resp.status < 400 else f"http_{resp.status}"
        except UpstreamError as exc:
            log.warning("drain of request %s via %s failed: %r", trace.request_id,
                        backend.address, exc)
        finally:
            pool.release(backend)
            self.state.metrics.inc("ascend_pd_proxy_drains_total", outcome=outcome)
        log.info("drained KV of abandoned request %s via %s: %s", trace.request_id,
                 backend.address, outcome)

