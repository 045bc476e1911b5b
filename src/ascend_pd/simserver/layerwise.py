"""The simulated MooncakeLayerwiseConnector: decode first, then the prefill pushes the KV.

As vllm-ascend's ``mooncake_layerwise_connector.py`` (v0.23.0, and main in 2026-08) does:

* **Decode** (``--layerwise``): a request whose ``kv_transfer_params`` has
  ``do_remote_prefill: true`` and a ``metaserver`` URL gets its blocks allocated, then D
  POSTs to that URL ``{token_ids: [], request_id: <external id>, do_remote_prefill: false,
  do_remote_decode: true, remote_block_ids, remote_block_size, remote_engine_id,
  remote_host, remote_port, remote_tp_size, remote_pcp_size, remote_dcp_size,
  remote_cached_tokens}`` (``update_state_after_alloc``; the external id is ``cmpl-<X-Request-
  Id>-<prompt index>`` for completions, ``chatcmpl-<X-Request-Id>`` for chat) and waits for
  the KV. Its blocks count as held until the KV arrived or the request is aborted.
* **Prefill** (``--layerwise``): reads ``params["remote_cached_tokens"]`` (a KeyError in the
  real connector: here a 500 naming it, so a prefill-first proxy in front of a layerwise
  prefill fails visibly), computes, and pushes the KV into D's blocks. In the simulator the
  push is ``POST /sim/kv/push`` on D (``remote_port`` is D's HTTP port); the real connector
  writes layer by layer over Mooncake.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from ascend_pd.simserver import responses as R
from ascend_pd.simserver.kv import BLOCK_SIZE

if TYPE_CHECKING:
    from ascend_pd.simserver.app import SimServer

log = logging.getLogger("ascend_pd.simserver")
_JSON = "application/json"
#: what the layerwise prefill reads from kv_transfer_params (KeyError in the real connector)
PREFILL_NEEDS = ("remote_cached_tokens", "remote_block_ids", "remote_host", "remote_port",
                 "remote_engine_id", "request_id")


def external_request_id(rid: str, *, chat: bool) -> str:
    """vLLM's id for the (first) engine request of an API request with ``X-Request-Id: rid``."""
    return f"chatcmpl-{rid}" if chat else f"cmpl-{rid}-0"


@dataclass
class _Wait:
    blocks: list[int]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    seed: str = ""


class Layerwise:
    """The layerwise side of one SimServer (decode: waits for pushes; prefill: pushes)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.waits: dict[str, _Wait] = {}
        self.metaserver_posts = 0
        self.pushes = 0

    @property
    def held_blocks(self) -> int:
        return sum(len(w.blocks) for w in self.waits.values() if not w.arrived.is_set())

    # -- decode side -----------------------------------------------------------------------
    async def decode_wait(self, kv: Any, rid: str, body: dict[str, Any], *, chat: bool,
                          session: aiohttp.ClientSession) -> web.Response | str:
        """Allocate, tell the metaserver, wait for the KV: its seed text, or an error."""
        if not (isinstance(kv, dict) and kv.get("do_remote_prefill") is True
                and isinstance(kv.get("metaserver"), str)):
            self.server.invalid_kv += 1
            return _error(400, f"Invalid KVTransferParams {kv}: a layerwise decode needs "
                          "do_remote_prefill and the proxy's metaserver URL")
        key = external_request_id(rid, chat=chat)
        prompt = int(body["_sim_prompt_tokens"])
        count = max(1, -(-prompt // BLOCK_SIZE))
        start = self.server.kv.next_block
        self.server.kv.next_block += count
        wait = _Wait(list(range(start, start + count)))
        self.waits[key] = wait
        params = {
            "token_ids": [], "request_id": key, "do_remote_prefill": False,
            "do_remote_decode": True, "remote_block_ids": wait.blocks,
            "remote_block_size": BLOCK_SIZE, "remote_engine_id": self.server.config.engine_id,
            "remote_host": self.server.advertised_host, "remote_port": self.server.port,
            "remote_tp_size": self.server.config.tp_size, "remote_pcp_size": 1,
            "remote_dcp_size": 1, "remote_cached_tokens": 0,
        }
        log.info("Send request: %s to proxy metaserver: %s", key, kv["metaserver"])
        # Fire and forget, like the connector's executor: the answer is not looked at.
        poster = asyncio.create_task(self._post(session, str(kv["metaserver"]), params))
        try:
            await asyncio.wait_for(wait.arrived.wait(), self.server.config.kv_abort_timeout_s)
        except TimeoutError:
            return _error(500, f"KV for request {key} never arrived from a prefill")
        finally:
            self.waits.pop(key, None)
            if not poster.done():
                poster.cancel()
        return wait.seed

    async def _post(self, session: aiohttp.ClientSession, url: str,
                    params: dict[str, Any]) -> None:
        self.metaserver_posts += 1
        try:
            async with session.post(url, json=params) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("Failed to connect to metaserver. url=%s: %s", url, exc)

    async def push_handler(self, request: web.Request) -> web.Response:
        """``POST /sim/kv/push``: a prefill delivers the KV of a waiting request."""
        body = await request.json()
        wait = self.waits.get(str(body.get("request_id")))
        if wait is None or list(body.get("block_ids") or []) != wait.blocks:
            return _error(404, f"no request {body.get('request_id')} waits for these blocks")
        wait.seed = str(body.get("seed", ""))
        wait.arrived.set()
        self.pushes += 1
        return web.Response(body=R.dumps({"received": True}), content_type=_JSON)

    # -- prefill side ----------------------------------------------------------------------
    async def prefill_push(self, kv: dict[str, Any], seed: str,
                           session: aiohttp.ClientSession) -> web.Response | None:
        """Push the computed KV into D's blocks; an error response when that cannot be."""
        missing = [k for k in PREFILL_NEEDS if k not in kv]
        if missing:
            log.error("EngineCore: KeyError %r in MooncakeLayerwiseConnector "
                      "update_state_after_alloc", missing[0])
            return _error(500, f"KeyError: {missing[0]!r} (a layerwise prefill needs the "
                          "kv_transfer_params a decode posted to the proxy's metaserver)")
        host = str(kv["remote_host"])
        host = f"[{host}]" if ":" in host else host
        url = f"http://{host}:{kv['remote_port']}/sim/kv/push"
        payload = {"request_id": kv["request_id"], "block_ids": kv["remote_block_ids"],
                   "seed": seed}
        try:
            async with session.post(url, json=payload) as resp:
                ok = resp.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("KV push to %s failed: %s", url, exc)
            ok = False
        if not ok:
            return _error(500, f"KV transfer to the decode at {url} failed")
        return None


def _error(status: int, message: str) -> web.Response:
    err_type = "BadRequestError" if status == 400 else \
        "NotFoundError" if status == 404 else "InternalServerError"
    return web.Response(status=status, body=R.error_body(message, err_type, status),
                        content_type=_JSON)
