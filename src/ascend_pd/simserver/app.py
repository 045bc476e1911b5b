"""The simulated vLLM OpenAI server: one aiohttp application per prefill or decode instance.

Behaviour that the proxy and the launcher depend on, as real vLLM-Ascend shows it:

* **Prefill** (kv_producer): a request whose ``kv_transfer_params.do_remote_decode`` is true
  is served length-capped (one token) and answered with ``kv_transfer_params`` naming the
  blocks it now holds. They stay held until a decode pulls them or the abort timeout expires
  (``Force freed expired request`` is logged then).
* **Decode** (kv_consumer): a request must carry valid ``kv_transfer_params`` naming blocks a
  live prefill holds; otherwise it is a visible HTTP 400 (``Invalid KVTransferParams``), never a
  silent local prefill. The pull is an HTTP call to the prefill's internal ``POST
  /sim/kv/pull`` -- in the simulator ``remote_port`` is the prefill's HTTP port, where real
  LLMDataDist would name its metadata RPC port.

Fault knobs (fail first N, crash after N, hang, 5xx rate, recompute rate) are seeded so that
runs repeat. ``GET /sim/state`` returns the counters as JSON for tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from ascend_pd.simserver import multi
from ascend_pd.simserver import responses as R
from ascend_pd.simserver.config import SimServerConfig
from ascend_pd.simserver.kv import BLOCK_SIZE, KvLedger
from ascend_pd.simserver.layerwise import Layerwise
from ascend_pd.simserver.prefix_cache import ComputeLanes, PrefixCache, block_hashes
from ascend_pd.simserver.tokens import count_prompt, generated_tokens, pieces, prompt_text

log = logging.getLogger("ascend_pd.simserver")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_MAX_TOKENS = 16
_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_REQUIRED_KV = ("remote_engine_id", "remote_host", "remote_port", "remote_tp_size")


def _error(status: int, message: str, err_type: str) -> web.Response:
    return web.Response(status=status, body=R.error_body(message, err_type, status),
                        content_type=_JSON)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _crash(reason: str) -> None:
    # Exit like a dying engine: no cleanup, connections dropped mid-response.
    log.error("EngineCore encountered a fatal error (simulated crash: %s)", reason)
    for handler in logging.getLogger("ascend_pd.simserver").handlers:
        handler.flush()
    sys.stdout.flush()
    os._exit(1)


class SimServer:
    """State and handlers of one simulated instance. ``app()`` builds the aiohttp app."""

    def __init__(self, config: SimServerConfig) -> None:
        self.config = config
        self.kv = KvLedger(config.kv_abort_timeout_s)
        self.layerwise = Layerwise(self) if config.layerwise else None
        self.rng = random.Random(config.seed)
        self.created = int(time.time())
        self.requests = 0
        self.running = 0
        self.peak_running = 0  # most requests ever running at once (admission tests)
        self.aborted = 0
        self.success = 0
        self.errors = 0
        self.invalid_kv = 0
        self.recomputed = 0
        self.prompt_tokens_total = 0
        self.unauthorized = 0
        self.generation_tokens_total = 0
        self.prefix_cache = PrefixCache(config.prefix_cache_blocks)
        self.lanes = ComputeLanes(config.compute_lanes)
        self._session: aiohttp.ClientSession | None = None
        self._never = asyncio.Event()
        #: the bound port (differs from config.port when that is 0); set by the runner
        self.port = config.port
        self.advertised_host = (
            "127.0.0.1" if config.host in ("", "0.0.0.0", "::") else config.host
        )

    # -- lifecycle ---------------------------------------------------------------------
    def app(self) -> web.Application:
        middlewares = [self._authenticate] if self.config.api_key else []
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=middlewares)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/sim/kv/pull", self._pull)
        if self.layerwise is not None:
            app.router.add_post("/sim/kv/push", self.layerwise.push_handler)
        app.router.add_get("/sim/state", self._state)
        app.cleanup_ctx.append(self._background)
        return app

    async def _background(self, _app: web.Application) -> Any:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        period = min(1.0, max(0.05, self.config.kv_abort_timeout_s / 4))
        task = asyncio.create_task(self._expire_loop(period))
        yield
        task.cancel()
        await self._session.close()

    async def _expire_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            self.kv.expire()

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # vLLM's AuthenticationMiddleware: /v1 paths only (health and metrics stay open).
        wanted = f"Bearer {self.config.api_key}"
        if (request.path.startswith("/v1") and request.method != "OPTIONS"
                and request.headers.get("Authorization") != wanted):
            self.unauthorized += 1
            return web.Response(status=401, body=R.dumps({"error": "Unauthorized"}),
                                content_type=_JSON)
        return await handler(request)

    # -- small endpoints ---------------------------------------------------------------
    async def _hang_if_asked(self) -> None:
        if self.config.hang:
            await self._never.wait()

    async def _health(self, _request: web.Request) -> web.Response:
        await self._hang_if_asked()
        return web.Response(status=200)

    async def _models(self, _request: web.Request) -> web.Response:
        await self._hang_if_asked()
        name = self.config.model
        return web.Response(body=R.dumps({"object": "list", "data": [{
            "id": name, "object": "model", "created": self.created, "owned_by": "vllm",
            "root": name, "parent": None, "max_model_len": self.config.max_model_len,
        }]}), content_type=_JSON)

    @property
    def held_blocks(self) -> int:
        """Prefill: blocks kept for a decode to pull; layerwise decode: blocks waiting for
        the prefill's KV."""
        waiting = self.layerwise.held_blocks if self.layerwise is not None else 0
        return self.kv.held_blocks + waiting

    def state(self) -> dict[str, Any]:
        """Counters a test (or ``/sim/state``) can assert on."""
        return {
            "role": self.config.role, "engine_id": self.config.engine_id,
            "requests": self.requests, "running": self.running, "aborted": self.aborted,
            "peak_running": self.peak_running,
            "success": self.success, "errors": self.errors, "invalid_kv": self.invalid_kv,
            "recomputed": self.recomputed, "held_requests": len(self.kv.held),
            "held_blocks": self.held_blocks, "kv_pulled": self.kv.pulled_total,
            "kv_force_freed": self.kv.force_freed_total, "unauthorized": self.unauthorized,
            "prefix_cache_hit_tokens": self.prefix_cache.hit_tokens_total,
            "prefill_computed_tokens": self.prefix_cache.computed_tokens_total,
        }

    async def _state(self, _request: web.Request) -> web.Response:
        return web.Response(body=R.dumps(self.state()), content_type=_JSON)

    async def _metrics(self, _request: web.Request) -> web.Response:
        await self._hang_if_asked()
        text = R.metrics_text(self.config.model, self.config.role, [
            ("vllm:num_requests_running", "gauge", self.running),
            ("vllm:num_requests_waiting", "gauge", 0),
            ("vllm:request_success_total", "counter", self.success),
            ("vllm:prompt_tokens_total", "counter", self.prompt_tokens_total),
            ("vllm:generation_tokens_total", "counter", self.generation_tokens_total),
            ("ascend_pd_sim_requests_total", "counter", self.requests),
            ("ascend_pd_sim_requests_aborted_total", "counter", self.aborted),
            ("ascend_pd_sim_kv_blocks_held", "gauge", self.held_blocks),
            ("ascend_pd_sim_kv_requests_held", "gauge", len(self.kv.held)),
            ("ascend_pd_sim_kv_pulled_total", "counter", self.kv.pulled_total),
            ("ascend_pd_sim_kv_force_freed_total", "counter", self.kv.force_freed_total),
            ("ascend_pd_sim_invalid_kv_params_total", "counter", self.invalid_kv)])
        return web.Response(text=text, content_type="text/plain",
                            headers={"X-Content-Version": "0.0.4"})

    async def _pull(self, request: web.Request) -> web.Response:
        body = await request.json()
        held = self.kv.pull(str(body.get("request_id")), list(body.get("block_ids") or []))
        if held is None:
            return _error(404, f"no blocks held for request {body.get('request_id')}",
                          "NotFoundError")
        return web.Response(body=R.dumps({"freed": True, "seed": held.seed}),
                            content_type=_JSON)

    # -- completions -------------------------------------------------------------------
    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    def _fault(self) -> web.Response | None:
        cfg = self.config
        if self.requests <= cfg.fail_first:
            return _error(503, "simulated startup failure", "ServiceUnavailableError")
        if cfg.error_rate and self.rng.random() < cfg.error_rate:
            return _error(500, "simulated engine error", "InternalServerError")
        return None

    async def _serve(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        await self._hang_if_asked()
        self.requests += 1
        crash = self.config.crash_after is not None and self.requests > self.config.crash_after
        fault = self._fault()
        if fault is not None:
            self.errors += 1
            return fault
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not valid JSON", "BadRequestError")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", "BadRequestError")
        problem = self._check(body, chat)
        if problem is not None:
            return problem
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            return await self._dispatch(request, body, chat=chat, crash=crash)
        except asyncio.CancelledError:
            self.aborted += 1  # the client went away: vLLM aborts the request
            raise
        finally:
            self.running -= 1

    def _check(self, body: dict[str, Any], chat: bool) -> web.Response | None:
        if body.get("model") != self.config.model:
            return _error(404, f"The model `{body.get('model')}` does not exist.",
                          "NotFoundError")
        limit = body.get("max_completion_tokens") if chat else None
        max_tokens = limit if limit is not None else body.get("max_tokens", DEFAULT_MAX_TOKENS)
        if max_tokens is None:
            max_tokens = DEFAULT_MAX_TOKENS
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return _error(400, "max_tokens must be at least 1", "BadRequestError")
        prompt = count_prompt(body)
        if prompt + max_tokens > self.config.max_model_len:
            return _error(400, (
                f"This model's maximum context length is {self.config.max_model_len} tokens. "
                f"However, you requested {prompt + max_tokens} tokens ({prompt} in the "
                f"messages, {max_tokens} in the completion). Please reduce the length of "
                "the messages or completion."), "BadRequestError")
        body["_sim_max_tokens"] = max_tokens
        body["_sim_prompt_tokens"] = prompt
        return None

    async def _dispatch(self, request: web.Request, body: dict[str, Any], *, chat: bool,
                        crash: bool) -> web.StreamResponse:
        rid = request.headers.get("X-Request-Id") or str(uuid.uuid4())
        bad = R.bad_answer(self.config.bad_answer)
        if bad is not None:
            return web.Response(status=200, body=bad[0], headers=bad[1], content_type=_JSON)
        kv = body.get("kv_transfer_params")
        prompt = int(body["_sim_prompt_tokens"])
        assert self._session is not None
        seed = prompt_text(body)
        if self.config.role == "prefill":
            cached = self._cached_prefix(body, prompt)
            # vLLM computes at least the last token even when every block is cached.
            computed = max(1, prompt - cached)
            await self.lanes.run(self.config.prefill_ms_per_1k * computed / 1e6)
            if crash:
                _crash("prefill")
            if self.layerwise is not None and isinstance(kv, dict) \
                    and kv.get("do_remote_decode"):
                failed = await self.layerwise.prefill_push(kv, seed, self._session)
                if failed is not None:
                    self.errors += 1
                    return failed
                return self._prefill_answer(rid, body, chat=chat, prompt=prompt,
                                            cached=cached, hold=False)
            if isinstance(kv, dict) and kv.get("do_remote_decode") \
                    and not self.config.no_kv_params:
                return self._prefill_answer(rid, body, chat=chat, prompt=prompt,
                                            cached=cached)
        elif not (kv is None and self.config.no_kv_params):
            # (a storage-connector decode, no_kv_params, reads the KV by the prompt instead)
            taken = (await self.layerwise.decode_wait(kv, rid, body, chat=chat,
                                                      session=self._session)
                     if self.layerwise is not None else await self._take_kv(kv, rid))
            if isinstance(taken, web.Response):
                return taken
            seed = taken
        response = await self._generate(request, rid, body, chat=chat, crash=crash, seed=seed)
        bodies = multi.prompt_bodies(body)
        if bodies is not None and isinstance(response, web.Response) \
                and isinstance(response.body, bytes):
            # One choice per prompt; a decode uses the one KV it pulled for all of them.
            seeds = [seed] * len(bodies) if self.config.role == "decode" and kv \
                else multi.own_seeds(bodies)
            response.body = multi.answer(response.body, bodies, seeds,
                                         int(body["_sim_max_tokens"]))
        return response

    def _cached_prefix(self, body: dict[str, Any], prompt: int) -> int:
        """Look the prompt up in the prefix cache and insert it; the cached token count
        (whole blocks), which the prefill's ``usage.prompt_tokens_details.cached_tokens``
        reports too."""
        cache = self.prefix_cache
        if not cache.capacity_blocks:
            cache.account(prompt, 0)
            return 0
        raw = body.get("prompt")
        if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
            tokens = [str(x) for x in raw]
        else:
            tokens = pieces(prompt_text(body))
        hashes = block_hashes(tokens)
        cached = min(cache.lookup(hashes), prompt)
        cache.insert(hashes)
        cache.account(prompt, cached)
        return cached

    def _prefill_answer(self, rid: str, body: dict[str, Any], *, chat: bool,
                        prompt: int, cached: int, hold: bool = True) -> web.Response:
        params: dict[str, Any] | None = None
        if hold:  # layerwise: the KV went to D already, nothing is held for a pull
            first, *others = multi.prompt_bodies(body) or [body]
            key, blocks = self.kv.hold(rid, count_prompt(first), prompt_text(first))
            for extra in others:
                # every prompt's blocks are kept; only the first one's params are answered
                self.kv.hold(rid, count_prompt(extra), prompt_text(extra))
            params = {
                "do_remote_prefill": True, "do_remote_decode": False,
                "remote_block_ids": blocks, "remote_engine_id": self.config.engine_id,
                "remote_host": self.advertised_host, "remote_port": self.port,
                "remote_tp_size": str(self.config.tp_size), "remote_request_id": key,
            }
        text = generated_tokens(prompt_text(body), 0, 1)[0]
        self.success += 1
        self.prompt_tokens_total += prompt
        self.generation_tokens_total += 1
        return web.Response(body=R.full_response(
            chat=chat, rid=("chatcmpl-" if chat else "cmpl-") + rid, created=int(time.time()),
            model=self.config.model, text=text, finish="length", stop_reason=None,
            prompt_tokens=prompt, completion_tokens=1, kv_params=params,
            cached_tokens=cached,
        ), content_type=_JSON)

    def _decode_cached(self, prompt: int) -> int | None:
        # A P/D decode got the whole prompt as KV: its own count says nothing about P's cache.
        return (prompt // BLOCK_SIZE) * BLOCK_SIZE if self.config.role == "decode" else None

    async def _take_kv(self, kv: Any, rid: str) -> web.Response | str:
        """Decode side: validate the hand-off and pull the blocks (the text they were
        computed from); a 400 when impossible."""
        valid = (
            isinstance(kv, dict) and kv.get("do_remote_prefill") is True
            and isinstance(kv.get("remote_block_ids"), list)
            and all(kv.get(k) is not None for k in _REQUIRED_KV)
        )
        if not valid:
            self.invalid_kv += 1
            log.warning("Invalid KVTransferParams %s, This request will be discard", kv)
            return _error(400, f"Invalid KVTransferParams {kv}: a decode instance needs the "
                          "kv_transfer_params returned by a prefill", "BadRequestError")
        assert isinstance(kv, dict)
        assert self._session is not None
        url = f"http://{_url_host(str(kv['remote_host']))}:{kv['remote_port']}/sim/kv/pull"
        payload = {"request_id": kv.get("remote_request_id") or rid,
                   "block_ids": kv["remote_block_ids"]}
        seed: str | None = None
        try:
            async with self._session.post(url, json=payload) as resp:
                if resp.status == 200:
                    seed = str((await resp.json()).get("seed", ""))
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.warning("KV pull from %s failed: %s", url, exc)
        if seed is None:
            self.invalid_kv += 1
            log.warning("Invalid KVTransferParams %s, This request will be discard "
                        "(blocks not held by engine %s)", kv, kv.get("remote_engine_id"))
            return _error(400, "KV transfer failed: the prefill holds no such blocks for "
                          f"request {payload['request_id']}", "BadRequestError")
        return seed

    async def _generate(self, request: web.Request, rid: str, body: dict[str, Any], *,
                        chat: bool, crash: bool, seed: str) -> web.StreamResponse:
        cfg = self.config
        max_tokens = int(body["_sim_max_tokens"])
        prompt = int(body["_sim_prompt_tokens"])
        n, finish, stop_reason = max_tokens, "length", None
        if (cfg.role == "decode" and max_tokens >= 2 and cfg.recompute_rate
                and self.rng.random() < cfg.recompute_rate):
            n, finish, stop_reason = max_tokens // 2, "stop", "recomputed"
            self.recomputed += 1
        tokens = generated_tokens(seed, 0, n)
        delay = cfg.decode_ms_per_token / 1000
        rid = ("chatcmpl-" if chat else "cmpl-") + rid
        created = int(time.time())
        self.prompt_tokens_total += prompt
        if not body.get("stream"):
            if delay:
                await asyncio.sleep(delay * n)
            if crash:
                _crash("decode")
            self.success += 1
            self.generation_tokens_total += n
            return web.Response(body=R.full_response(
                chat=chat, rid=rid, created=created, model=cfg.model, text="".join(tokens),
                finish=finish, stop_reason=stop_reason, prompt_tokens=prompt,
                cached_tokens=self._decode_cached(prompt),
                completion_tokens=n, kv_params=None), content_type=_JSON)
        resp = web.StreamResponse(headers={"Content-Type": _SSE})
        await resp.prepare(request)

        def event(text: str | None, last: bool = False, role: bool = False) -> bytes:
            return R.chunk(chat=chat, rid=rid, created=created, model=cfg.model, text=text,
                           finish=finish if last else None, stop_reason=stop_reason,
                           role=role)

        if chat:
            await resp.write(event(None, role=True))
        crash_at = min(2, n - 1) if crash else -1
        for i, tok in enumerate(tokens):
            if delay:
                await asyncio.sleep(delay)
            if i == crash_at:
                _crash("decode mid-stream")
            await resp.write(event(tok, last=i == n - 1))
            self.generation_tokens_total += 1
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            await resp.write(R.usage_chunk(chat=chat, rid=rid, created=created,
                                           model=cfg.model, prompt_tokens=prompt,
                                           cached_tokens=self._decode_cached(prompt),
                                           completion_tokens=n))
        if cfg.bad_answer != "no_done":
            await resp.write(R.DONE)
        await resp.write_eof()
        self.success += 1
        return resp
