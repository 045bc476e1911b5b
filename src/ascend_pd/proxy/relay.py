"""One client request through the proxy: the prefill leg, the decode leg, and what can go wrong.

Rules this module keeps (every leg goes through ``legs.Legs.send``):

* Accounting is released on every path: success, upstream error, timeout and client
  cancellation (``CancelledError`` from aiohttp's handler cancellation).
* A leg is retried on *another* backend for connect errors, timeouts and 5xx -- never for
  4xx, and never once the first byte reached the client.
* Upstream errors reach the client with their status and body; a prefill answer without
  ``kv_transfer_params`` is a 502, not a silent local prefill on D (``--kv-params optional``,
  the storage connector: the decode leg goes without them, nothing to drain).
* Decode bytes are relayed as received, with the decode's content type. A decode dying
  mid-stream ends the client stream with an SSE ``error`` event and no ``[DONE]``.
* **KV accounting is a guarantee**: every prefill that answered is either consumed by a
  decode that answered 2xx or *drained* (its kv_transfer_params sent to a decode with
  max_tokens 1, output discarded, so P frees the blocks now rather than at its abort
  timeout) -- after a decode 4xx/5xx, a client gone at any moment (a running prefill is
  let finish, then drained), or no decode left. No prefill starts when no decode is
  healthy. A decode that failed after it got the request (it may have pulled the KV) is
  not retried with the same KV: the request is re-prefilled for another pair.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from ascend_pd.proxy import contract, inbound, multiprompt
from ascend_pd.proxy.affinity import prefill_keys
from ascend_pd.proxy.decode_first import DecodeFirst
from ascend_pd.proxy.legs import Answer, Leg, LegFailed, Legs, passthrough
from ascend_pd.proxy.state import ProxyState
from ascend_pd.proxy.stream import (
    StreamPump,
    UpstreamBroken,
    merge_recomputed,
    prompt_cached_tokens,
    recomputed_choice,
    set_cached_tokens,
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
        self.decode_first = (DecodeFirst(state, self.legs)
                             if state.config.flow == "decode-first" else None)

    # -- entry -------------------------------------------------------------------------
    async def handle(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        """Serve one ``/v1/completions`` or ``/v1/chat/completions`` request."""
        trace = Trace(new_request_id(), endpoint)  # the client's id once it is checked
        metrics = self.state.metrics
        response: web.StreamResponse | None = None
        headers: dict[str, str] = {}
        try:
            try:
                body = await self._read(request, trace)
                trace.stream = bool(body.get("stream"))
                headers = self.state.backend_headers(request.headers, trace.request_id)
                subs = self._split(body, trace)
                if subs is not None:
                    response = await self.split_request(body, subs, headers, trace)
                elif trace.stream:
                    response = await self.stream_decode(request, body, headers, trace)
                else:
                    response = await self.decode_full(body, headers, trace)
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
            # connection is closed by the unwinding ``finally`` blocks.
            trace.outcome, trace.status = "client_disconnected", 499
            metrics.inc("ascend_pd_proxy_client_disconnects_total")
            raise
        except ConnectionResetError:
            # A write to a client that left; nothing more can be sent to it.
            trace.outcome, trace.status = "client_disconnected", 499
            metrics.inc("ascend_pd_proxy_client_disconnects_total")
            response = web.Response(status=499)
        except web.HTTPException as exc:  # aiohttp's own answers (413 above max_body_bytes)
            trace.outcome, trace.status = "bad_request", exc.status
            raise
        except Exception:  # a bug, or an input nobody foresaw: a logged 500, never "ok"
            log.exception("request %s failed in the proxy", trace.request_id)
            trace.outcome, trace.status = "error", 500
            response = error_response(500, "internal proxy error (logged with the request "
                                      "id)", "InternalServerError", trace.request_id)
        finally:
            if response is not None:
                trace.status = trace.status or response.status
            if trace.kv_pending and self.state.config.drain_on_disconnect:
                self.state.spawn(self.drain(headers, trace))
            finish_trace(trace, metrics)
        return response

    async def _read(self, request: web.Request, trace: Trace) -> dict[str, Any]:
        """The client's body; sets the trace's request id to the client's, once checked."""
        raw = await request.read()  # aiohttp answers 413 itself above client_max_size
        try:
            body = inbound.parse_body(raw, self.state.config.max_json_depth)
            rid = inbound.request_id(request.headers.get("X-Request-Id"), body)
            inbound.check_authorization(request.headers.get("Authorization"))
        except inbound.BadRequest as exc:
            raise Reply(error_response(400, str(exc), "BadRequestError", trace.request_id),
                        "bad_request") from None
        trace.request_id = rid or trace.request_id
        return body

    def _split(self, body: dict[str, Any], trace: Trace) -> list[dict[str, Any]] | None:
        try:
            return multiprompt.split(body)
        except inbound.BadRequest as exc:
            raise Reply(error_response(400, str(exc), "BadRequestError", trace.request_id),
                        "bad_request") from None

    async def split_request(self, body: dict[str, Any], subs: list[dict[str, Any]],
                            headers: dict[str, str], trace: Trace) -> web.StreamResponse:
        """A list of prompts or n > 1: one P/D pair per (prompt, sample), merged in order."""
        traces = [Trace(f"{trace.request_id}-{i}", trace.endpoint) for i in range(len(subs))]
        sub_headers = [{**headers, "X-Request-Id": t.request_id} for t in traces]

        async def one(i: int) -> web.StreamResponse:
            try:
                return await self.decode_full(subs[i], sub_headers[i], traces[i])
            except Reply as reply:
                return reply.response

        try:
            responses = await asyncio.gather(*(one(i) for i in range(len(subs))))
        finally:
            for sub, sub_head in zip(traces, sub_headers, strict=True):
                if sub.kv_pending and self.state.config.drain_on_disconnect:
                    self.state.spawn(self.drain(sub_head, sub))
                trace.retries += sub.retries
                trace.recomputes += sub.recomputes
            trace.prefill, trace.decode = traces[0].prefill, traces[0].decode
            trace.prefill_ms, trace.first_byte_ms = traces[0].prefill_ms, traces[0].first_byte_ms
        failed = next((r for r in responses if r.status != 200), None)
        if failed is not None:
            trace.outcome = "split_request_failed"
            return failed
        bodies = [r.body if isinstance(r, web.Response) else None for r in responses]
        merged = multiprompt.merge([json.loads(b) for b in bodies if isinstance(b, bytes)],
                                   prompts=multiprompt.prompt_count(body))
        merged["id"] = ("chatcmpl-" if "messages" in body else "cmpl-") + trace.request_id
        return web.Response(text=json.dumps(merged), content_type=JSON_TYPE,
                            headers={"X-Request-Id": trace.request_id})

    # -- prefill -----------------------------------------------------------------------
    async def prefill(self, body: dict[str, Any], headers: dict[str, str], trace: Trace,
                      ) -> dict[str, Any] | None:
        """Run the prefill leg (with retries); the kv_transfer_params P returned (None when
        optional), which stay in ``trace.kv_pending`` until a decode consumed them."""
        if not self.state.config.drain_on_disconnect:
            return await self._prefill(body, headers, trace)
        task = asyncio.ensure_future(self._prefill(body, headers, trace))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The client left mid-prefill. Closing the leg would abort a prefill that is
            # still running, but one that has just finished holds its blocks whether or not
            # anyone reads its answer, and a closed connection cannot tell which: let it
            # finish (bounded by prefill_timeout_s) and drain what it returns.
            self.state.spawn(self._drain_when_done(task, headers, trace))
            raise

    async def _prefill(self, body: dict[str, Any], headers: dict[str, str], trace: Trace,
                       ) -> dict[str, Any] | None:
        leg = Leg("prefill", trace.endpoint, json.dumps(contract.prefill_body(body)).encode(),
                  headers, tokens=contract.estimate_prompt_tokens(body),
                  attempts=self.state.config.max_retries + 1,
                  keys=prefill_keys(self.state.config.policy_prefill, body))
        answer = await self.legs.send(leg, trace)
        kv = (answer.json or {}).get("kv_transfer_params")
        if not isinstance(kv, dict) and self.state.config.kv_params == "optional":
            if trace.cached_tokens is None:
                trace.cached_tokens = prompt_cached_tokens(answer.json)
            return None  # the KV went to shared storage: nothing held on P to drain
        if not isinstance(kv, dict):
            name = str(answer.backend.address)
            self.state.metrics.inc("ascend_pd_proxy_missing_kv_params_total", backend=name)
            log.error("prefill %s answered request %s without kv_transfer_params",
                      name, trace.request_id)
            raise Reply(error_response(
                502, f"prefill {name} returned no kv_transfer_params; is it started with "
                "kv_role kv_producer and a KV connector?", "BadGatewayError",
                trace.request_id), "missing_kv_params")
        trace.kv_pending.append((body, kv))
        if trace.cached_tokens is None:
            trace.cached_tokens = prompt_cached_tokens(answer.json)
        return kv

    async def _drain_when_done(self, task: asyncio.Future[dict[str, Any] | None],
                               headers: dict[str, str], trace: Trace) -> None:
        try:
            await task
        except (Reply, asyncio.CancelledError):
            return  # no KV to drain (failed, refused, or the proxy is shutting down)
        await self.drain(headers, trace)

    # -- decode ------------------------------------------------------------------------
    def _require_decode(self, trace: Trace) -> None:
        """Refuse before prefilling when no decode could take the KV (it would only leak)."""
        if not self.state.pools["decode"].healthy():
            raise Reply(error_response(
                503, "no healthy decode backend: the request was not prefilled",
                "ServiceUnavailableError", trace.request_id), "no_decode")

    async def _pair(self, body: dict[str, Any], headers: dict[str, str], trace: Trace, *,
                    stream: bool) -> Answer:
        """Prefill, then decode with its KV: the decode's 2xx Answer (stream still open).
        (The decode-first flow has its own pair: ``decode_first.DecodeFirst.pair``.)

        A decode that failed after it got the request may have pulled the KV (a retry with
        the same kv_transfer_params would find P's blocks gone): the request is prefilled
        again for another decode, up to ``max_retries`` extra pairs. Raises Reply with the
        client's answer when no pair succeeds.
        """
        if self.decode_first is not None:
            return await self.decode_first.pair(body, headers, trace, stream=stream)
        pairs = self.state.config.max_retries + 1
        for pair in range(pairs):
            self._require_decode(trace)
            kv = await self.prefill(body, headers, trace)
            leg = Leg("decode", trace.endpoint,
                      json.dumps(contract.decode_body(body, kv)).encode(), headers,
                      stream=stream, attempts=self.state.config.max_retries + 1,
                      avoid=list(trace.failed_decodes), unsent_only=True)
            try:
                answer = await self.legs.send(leg, trace)
            except LegFailed as failed:
                if not failed.sent or pair + 1 == pairs:
                    raise LegFailed(_after_kv(failed.response, trace), failed.outcome,
                                    sent=failed.sent) from None
                trace.retries += 1
                self.state.metrics.inc("ascend_pd_proxy_retries_total", role="pair")
                continue  # its KV stays pending: drained when the request ends
            if kv is not None:
                trace.kv_pending.remove((body, kv))  # consumed by the decode that answered
            return answer
        raise AssertionError("unreachable: the last pair returns or raises")

    async def decode_full(self, body: dict[str, Any], headers: dict[str, str], trace: Trace,
                          ) -> web.Response:
        """Non-streaming request, with recompute rounds merged into one answer."""
        parts: list[dict[str, Any]] = []
        current = body
        while True:
            answer = await self._pair(current, headers, trace, stream=False)
            answer.close()
            data, parsed = answer.data, answer.json or {}
            choice = recomputed_choice(data) if contract.can_recompute(body) else None
            if choice is None or trace.recomputes >= self.state.config.max_recomputes:
                cached = trace.cached_tokens
                if not parts and (cached is None or not set_cached_tokens(parsed, cached)):
                    return passthrough(answer.status, data, answer.headers, trace.request_id)
                parts.append(parsed)
                merged = merge_recomputed(parts, chat="messages" in body) if len(parts) > 1 \
                    else parsed
                if cached is not None:
                    set_cached_tokens(merged, cached)
                return web.Response(status=answer.status, text=json.dumps(merged),
                                    content_type=JSON_TYPE,
                                    headers={"X-Request-Id": trace.request_id})
            parts.append(parsed)
            current = self._continuation(body, merge_recomputed(parts, chat="messages" in body),
                                         trace)

    def _continuation(self, body: dict[str, Any], merged: dict[str, Any], trace: Trace,
                      ) -> dict[str, Any]:
        """The body that continues a recomputed request after what it generated so far."""
        trace.recomputes += 1
        self.state.metrics.inc("ascend_pd_proxy_recomputes_total")
        choice = merged["choices"][0]
        text = (choice.get("message") or {}).get("content") if "messages" in body \
            else choice.get("text")
        done = int((merged.get("usage") or {}).get("completion_tokens") or 0)
        remaining = max(1, contract.requested_max_tokens(body) - done)
        return contract.continuation_body(body, text or "", remaining)

    async def stream_decode(self, request: web.Request, body: dict[str, Any],
                            headers: dict[str, str], trace: Trace) -> web.StreamResponse:
        """Streaming request: relay bytes; recompute rounds continue the same stream."""
        recompute = contract.can_recompute(body)
        pump: StreamPump | None = None
        current = body
        while True:
            try:
                answer = await self._pair(current, headers, trace, stream=True)
            except Reply as reply:
                if pump is None:
                    raise
                # Bytes already went out: the only honest ending is an error event.
                await pump.fail(f"recompute continuation failed: HTTP {reply.response.status}")
                trace.outcome = "recompute_failed"
                return pump.response
            try:
                if pump is None:
                    pump = StreamPump(request, answer.response, trace.request_id,
                                      recompute and self.state.config.max_recomputes > 0)
                    if contract.wants_usage(body):
                        pump.cached_tokens = trace.cached_tokens
                    await pump.start()
                result = await pump.relay(answer.response, answer.data,
                                          allow_recompute=recompute and trace.recomputes
                                          < self.state.config.max_recomputes)
            except UpstreamBroken as broken:
                self.legs.failed_mid_stream(answer, "decode", trace, broken.cause)
                trace.outcome = "decode_died_mid_stream"
                assert pump is not None
                await pump.fail(f"decode {answer.backend.address} failed mid-stream: "
                                f"{broken.cause!r}")
                return pump.response
            except ConnectionResetError:
                raise  # the client left (handle() counts it)
            except Exception:
                if pump is None or not pump.response.prepared:
                    raise
                log.exception("request %s failed in the proxy mid-stream", trace.request_id)
                trace.outcome, trace.status = "error", 500
                await pump.fail("internal proxy error (logged with the request id)")
                return pump.response
            finally:
                answer.close()
            if result is None:
                if not pump.complete:
                    # A stream cut short without [DONE] is not a success, whatever its
                    # status line said: the client gets an error event, not silence.
                    self.legs.failed_mid_stream(answer, "decode", trace, None)
                    trace.outcome = "decode_stream_truncated"
                    await pump.fail(f"decode {answer.backend.address} ended its stream "
                                    "without [DONE]")
                    return pump.response
                await pump.finish()
                return pump.response
            text, done = result
            merged = {"choices": [{"text": text, "message": {"content": text}}],
                      "usage": {"completion_tokens": done}}
            current = self._continuation(body, merged, trace)

    # -- drain -------------------------------------------------------------------------
    async def drain(self, headers: dict[str, str], trace: Trace) -> None:
        """Drain every pending KV of ``trace``: a 1-token decode leg each, output discarded."""
        while trace.kv_pending:
            body, kv = trace.kv_pending.pop()
            if not self.state.pools["decode"].healthy():
                log.warning("cannot drain request %s: no healthy decode", trace.request_id)
                self.state.metrics.inc("ascend_pd_proxy_drains_total", outcome="no_decode")
                continue
            # Retried on another decode whatever failed: if the failed one had pulled the
            # blocks after all, the next answers 400 (nothing held), which is harmless.
            # A round in which every decode failed (one restarting, the rest overloaded) is
            # tried again after a pause: giving up holds the blocks until the prefill's
            # abort timeout (480 s by default), which under load is the outage.
            for pause in (*DRAIN_RETRY_PAUSES_S, None):
                leg = Leg("drain", trace.endpoint,
                          json.dumps(contract.drain_body(body, kv)).encode(), headers,
                          attempts=self.state.config.max_retries + 1,
                          avoid=list(trace.failed_decodes))
                try:
                    answer = await self.legs.send(leg, trace)
                    outcome, where = "ok", str(answer.backend.address)
                except Reply as reply:
                    status = reply.response.status
                    outcome = f"http_{status}" if reply.outcome == "drain_rejected" \
                        else "error"
                    where = "-"
                if outcome != "error" or pause is None:
                    break
                await asyncio.sleep(pause)
            self.state.metrics.inc("ascend_pd_proxy_drains_total", outcome=outcome)
            log.info("drained KV of abandoned request %s via %s: %s", trace.request_id, where,
                     outcome)


#: pauses before the second and third round of a drain whose every attempt failed
DRAIN_RETRY_PAUSES_S: tuple[float, ...] = (1.0, 3.0)


def _after_kv(response: web.StreamResponse, trace: Trace) -> web.StreamResponse:
    """The client's answer when no decode could serve a prefilled request: a clear 502/503/504
    that says so, rather than a decode's 400 about KV it could not find."""
    if response.status < 500:
        return response
    text = getattr(response, "text", None) or ""
    try:
        detail = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = text[:200]
    return error_response(
        response.status, f"no decode could serve the request after its prefill "
        f"(tried {len(trace.failed_decodes)}): {detail}",
        "ServiceUnavailableError" if response.status == 503 else "BadGatewayError",
        trace.request_id)
