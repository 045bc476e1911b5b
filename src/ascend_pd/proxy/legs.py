"""One leg of a request to a backend role, with retries: the proxy's only way to reach a backend.

``Legs.send(leg, trace)`` picks a backend, acquires its accounting slot, sends, reads (the
whole body, or up to the first bytes of a stream), classifies the answer, releases the slot
(or hands it to the caller with an open stream) and records the attempt -- for the prefill,
decode and drain legs and the decode-first flow alike. Classification:

* connect error, timeout, early close, malformed answer, 5xx: retried on *another* backend
  (up to ``leg.attempts``), never once a byte reached the client (the caller's business:
  it only calls ``send`` before that). A leg with ``unsent_only`` is retried only when the
  failed attempt never reached its backend (connect failed): a decode that got the request
  may have pulled the KV, so the caller re-prefills instead (``LegFailed.sent``);
* 4xx: not retried; the backend's status and body reach the client (``Reply``);
* 2xx: returned as an ``Answer``; a non-streamed 2xx whose body is not a JSON object (empty,
  truncated, garbage) counts as a failed attempt (502), never as an answer.

``Legs._pick`` / ``Lease.release`` is the one place a backend slot is taken and given back,
through the admission gate (``proxy.admission``: per-backend in-flight limits, the bounded
queue, circuit breakers); every attempt's outcome feeds the breaker (``_attempt``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from ascend_pd.proxy.admission import Admission, Overloaded
from ascend_pd.proxy.balancer import Backend, Role
from ascend_pd.proxy.state import ProxyState
from ascend_pd.proxy.trace import JSON_TYPE, Reply, Trace, error_response
from ascend_pd.proxy.upstream import (
    ConnectFailed,
    UpstreamClosed,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)

log = logging.getLogger("ascend_pd.proxy")

LegKind = Literal["prefill", "decode", "drain"]
ROLE: dict[LegKind, Role] = {"prefill": "prefill", "decode": "decode", "drain": "decode"}


@dataclass
class Leg:
    """What to send to which role.

    Attributes:
        kind: ``prefill``, ``decode`` or ``drain`` (a decode whose output is discarded).
        path: the endpoint (``/v1/completions`` ...).
        payload, headers: the request.
        tokens: prompt tokens the leg puts on its backend (prefill load accounting).
        stream: return at the first body bytes with the response open (the caller relays
            the rest and closes the Answer); otherwise the whole body, slot released.
        attempts: backends to try at most.
        avoid: backends to pick only when no other is left (e.g. decodes that just failed).
        unsent_only: retry only attempts that never reached their backend.
        keys: the prompt's prefix chain, for the ``cache_aware`` prefill policy.
    """

    kind: LegKind
    path: str
    payload: bytes
    headers: Mapping[str, str]
    tokens: int = 0
    stream: bool = False
    attempts: int = 1
    avoid: list[Backend] = field(default_factory=list)
    unsent_only: bool = False
    keys: tuple[int, ...] = ()

    @property
    def role(self) -> Role:
        return ROLE[self.kind]


@dataclass(eq=False)
class Lease:
    """A backend's accounting slot held by one leg; ``release`` is idempotent."""

    backend: Backend
    gate: Admission
    tokens: int = 0
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gate.release(self.backend, self.tokens)


class LegFailed(Reply):
    """Every attempt of a leg failed; ``sent`` when one of them reached its backend."""

    def __init__(self, response: web.StreamResponse, outcome: str, *, sent: bool) -> None:
        super().__init__(response, outcome)
        self.sent = sent


@dataclass(frozen=True)
class _Failure:
    response: web.Response  # what the client would get if no other attempt succeeds
    sent: bool  # the request may have reached the backend


@dataclass(eq=False)
class Answer:
    """A 2xx answer: the whole body, or the first bytes of a stream still open."""

    backend: Backend
    response: UpstreamResponse
    data: bytes
    lease: Lease
    json: dict[str, Any] | None = None  # the parsed body of a non-streamed answer

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> dict[str, str]:
        return self.response.headers

    def close(self) -> None:
        """Give the slot back and close the response (an unfinished one aborts on the backend)."""
        self.lease.release()
        self.response.close()


def _json_object(data: bytes) -> dict[str, Any] | None:
    """A non-streamed answer as the JSON object every vLLM 2xx body is; None otherwise."""
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def passthrough(status: int, data: bytes, headers: Mapping[str, str], rid: str,
                ) -> web.Response:
    """A backend's answer as the client gets it: status, body and content type unchanged."""
    out = {"Content-Type": headers.get("content-type", JSON_TYPE), "X-Request-Id": rid}
    return web.Response(status=status, body=data, headers=out)


class Legs:
    """Send legs over the shared ProxyState (pools, metrics, upstream client)."""

    def __init__(self, state: ProxyState) -> None:
        self.state = state

    # -- sending ---------------------------------------------------------------------------
    async def send(self, leg: Leg, trace: Trace) -> Answer:
        """Run ``leg`` until an attempt answers 2xx; raises Reply for a 4xx, LegFailed when
        every attempt failed (the last backend error, or 503 when no backend was left)."""
        tried: list[Backend] = []
        last: web.Response | None = None
        sent = False
        for _attempt in range(leg.attempts):
            lease = await self._pick(leg, tried, trace)
            if lease is None:
                break
            result = await self._attempt(lease, leg, trace)
            if isinstance(result, Answer):
                return result
            last, sent = result.response, sent or result.sent
            if leg.unsent_only and result.sent:
                break
        raise LegFailed(last or error_response(
            503, f"no healthy {leg.role} backend (all ejected or all attempts failed)",
            "ServiceUnavailableError", trace.request_id), f"{leg.kind}_failed", sent=sent)

    async def _pick(self, leg: Leg, tried: list[Backend], trace: Trace) -> Lease | None:
        """A slot on the next backend (waiting in the admission queue when every backend is
        full); None when none is left. Overloaded becomes a 429/503 with Retry-After."""
        gate = self.state.admission
        try:
            slot = await gate.acquire(leg.role, tried, leg.tokens, avoid=leg.avoid,
                                      keys=leg.keys, priority=leg.kind == "drain",
                                      timeout=self.state.config.drain_timeout_s)
        except Overloaded as exc:
            reply = error_response(exc.status, exc.message, "RateLimitError"
                                   if exc.status == 429 else "ServiceUnavailableError",
                                   trace.request_id)
            reply.headers["Retry-After"] = str(exc.retry_after_s)
            raise Reply(reply, exc.reason) from None
        if slot is None:
            return None
        backend = slot.backend
        if leg.kind != "drain":
            if tried:
                trace.retries += 1
                self.state.metrics.inc("ascend_pd_proxy_retries_total", role=leg.role)
            setattr(trace, leg.role, str(backend.address))
            self.state.metrics.inc("ascend_pd_proxy_requests_total", role=leg.role,
                                   backend=str(backend.address))
        tried.append(backend)
        return Lease(backend, gate, slot.tokens)

    def _timeouts(self, kind: LegKind) -> tuple[float, float | None]:
        """(read, total) timeouts of a leg: a prefill or drain answer must arrive whole in
        time; a decode may stream for as long as it never falls silent for too long."""
        cfg = self.state.config
        if kind == "prefill":
            return cfg.prefill_timeout_s, cfg.prefill_timeout_s
        if kind == "drain":
            return cfg.drain_timeout_s, cfg.drain_timeout_s
        return cfg.decode_read_timeout_s, None

    async def _attempt(self, lease: Lease, leg: Leg, trace: Trace) -> Answer | _Failure:
        """One try on one backend: its answer, or what failed."""
        backend = lease.backend
        state, name, rid = self.state, str(backend.address), trace.request_id
        read_timeout, total_timeout = self._timeouts(leg.kind)
        t = time.perf_counter()
        resp: UpstreamResponse | None = None
        keep = False
        try:
            resp = await state.upstream.request(
                "POST", backend.address, leg.path, body=leg.payload, headers=leg.headers,
                connect_timeout=state.config.connect_timeout_s, read_timeout=read_timeout,
                total_timeout=total_timeout)
            if resp.status >= 400:
                data = await resp.read()
                self._breaker(backend, resp.status)
                self._failed(backend, leg.kind, trace, None)
                last = passthrough(resp.status, data, resp.headers, rid)
                if resp.status >= 500:
                    return _Failure(last, sent=True)
                raise Reply(last, f"{leg.kind}_rejected")
            data = await (resp.readany() if leg.stream else resp.read())
            if leg.stream and not data:
                raise UpstreamClosed("it ended its stream before any byte")
            parsed = None if leg.stream else _json_object(data)
            if not leg.stream and parsed is None:
                raise UpstreamClosed(f"it answered {resp.status} with "
                                     + ("an empty body" if not data.strip()
                                        else f"a body that is not a JSON object: {data[:60]!r}"))
            self._breaker(backend, resp.status)
            self._answered(backend, leg, trace, time.perf_counter() - t)
            keep = leg.stream
            return Answer(backend, resp, data, lease, parsed)
        except asyncio.CancelledError:
            if leg.role == "decode":
                trace.failed_decodes.append(backend)  # it may hang: drain elsewhere
            raise
        except UpstreamError as exc:
            self._breaker(backend, None)
            self._failed(backend, leg.kind, trace, exc)
            status = 504 if isinstance(exc, UpstreamTimeout) else 502
            return _Failure(error_response(status, f"{leg.kind} {name} failed: {exc}",
                                           "BadGatewayError", rid),
                            sent=not isinstance(exc, ConnectFailed))
        finally:
            if not keep:
                lease.release()
                if resp is not None:
                    resp.close()
            if leg.kind == "prefill":
                state.metrics.observe("ascend_pd_proxy_prefill_latency_seconds",
                                      time.perf_counter() - t, backend=name)

    # -- recording -------------------------------------------------------------------------
    def _breaker(self, backend: Backend, status: int | None) -> None:
        """Feed the backend's circuit breaker (None: no usable answer)."""
        change = self.state.admission.record(backend, status)
        if change == "open":
            log.warning("%s backend %s: circuit breaker open for %g s after %d failed legs",
                        backend.role, backend.address, self.state.config.breaker_open_s,
                        self.state.config.breaker_failures)
        elif change == "closed":
            log.warning("%s backend %s: circuit breaker closed (probe answered)",
                        backend.role, backend.address)

    def _answered(self, backend: Backend, leg: Leg, trace: Trace, elapsed: float) -> None:
        if leg.kind == "prefill":
            trace.prefill_ms = round(elapsed * 1000, 3)
        elif leg.kind == "decode":
            self.state.metrics.observe("ascend_pd_proxy_decode_first_byte_seconds", elapsed,
                                       backend=str(backend.address))
            if trace.first_byte_ms is None:
                trace.first_byte_ms = round((time.perf_counter() - trace.t0) * 1000, 3)

    def _failed(self, backend: Backend, kind: LegKind, trace: Trace,
                exc: BaseException | None) -> None:
        """Count a failed attempt (also used for a decode that dies mid-stream)."""
        if kind != "drain":
            self.state.metrics.inc("ascend_pd_proxy_errors_total", role=ROLE[kind],
                                   backend=str(backend.address))
        if ROLE[kind] == "decode":
            trace.failed_decodes.append(backend)
        if isinstance(exc, ConnectFailed):
            # A refused connect is as good as a failed probe: stop sending traffic sooner.
            self.state.record_probe(backend, ok=False)

    def failed_mid_stream(self, answer: Answer, kind: LegKind, trace: Trace,
                          exc: BaseException | None) -> None:
        """A streamed answer broke after its first bytes (not retried: the client has them)."""
        self._breaker(answer.backend, None)
        self._failed(answer.backend, kind, trace, exc)
