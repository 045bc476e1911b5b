"""What the proxy records and answers about one client request: Trace, Reply, error bodies.

``Trace`` is filled in along the relay and turned into the access-log line and the
end-to-end metrics by ``finish_trace`` -- after the response went out, so neither the JSON
encoding of the line nor the logging handler sits between the decode's answer and the
client (the c=1 added-latency target, docs/proxy.md).
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from ascend_pd.proxy.balancer import Backend
    from ascend_pd.proxy.metrics import ProxyMetrics

access_log = logging.getLogger("ascend_pd.proxy.access")
JSON_TYPE = "application/json"
#: Request ids only need to be unique, not secret: a seeded Mersenne Twister avoids the
#: getrandom(2) system call that uuid.uuid4() makes for every request.
_ids = random.Random()


def new_request_id() -> str:
    """A random (version 4) UUID string for a client request that brought no X-Request-Id."""
    return str(uuid.UUID(int=_ids.getrandbits(128), version=4))


def error_response(status: int, message: str, err_type: str, rid: str = "") -> web.Response:
    """An OpenAI-style error body (what clients such as ``openai`` parse)."""
    body = json.dumps({"error": {"message": message, "type": err_type, "param": None,
                                 "code": status}})
    headers = {"X-Request-Id": rid} if rid else None
    return web.Response(status=status, text=body, content_type=JSON_TYPE, headers=headers)


class Reply(Exception):
    """Stop the relay and send ``response`` to the client."""

    def __init__(self, response: web.StreamResponse, outcome: str) -> None:
        super().__init__(outcome)
        self.response = response
        self.outcome = outcome


#: The access-log fields, in the order of the line.
LOG_FIELDS = ("request_id", "endpoint", "stream", "prefill", "decode", "status", "outcome",
              "retries", "recomputes", "prefill_ms", "first_byte_ms", "total_ms")


@dataclass
class Trace:
    """What the access log line and the metrics say about one request."""

    request_id: str
    endpoint: str
    stream: bool = False
    prefill: str | None = None
    decode: str | None = None
    status: int = 0
    outcome: str = "ok"
    retries: int = 0
    recomputes: int = 0
    prefill_ms: float | None = None
    first_byte_ms: float | None = None
    total_ms: float | None = None
    t0: float = field(default_factory=time.perf_counter, repr=False)
    #: (prefill body, kv_transfer_params) of every prefill that answered and whose KV no
    #: decode is known to have consumed yet: drained when the request ends (KV accounting)
    kv_pending: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list,
                                                                     repr=False)
    failed_decodes: list[Backend] = field(default_factory=list, repr=False)
    #: the (first) prefill's usage.prompt_tokens_details.cached_tokens, for the answer
    cached_tokens: int | None = field(default=None, repr=False)

    def line(self) -> str:
        """The JSON access-log line (a flat dict of the fields above, no private state)."""
        # Not dataclasses.asdict: it deep-copies kv_pending and the Backend objects only for
        # them to be dropped, which cost more than the rest of the line.
        return json.dumps({name: getattr(self, name) for name in LOG_FIELDS},
                          separators=(",", ":"))


def finish_trace(trace: Trace, metrics: ProxyMetrics) -> None:
    """Close the books on a request: total time, client-request metrics, access-log line."""
    trace.total_ms = round((time.perf_counter() - trace.t0) * 1000, 3)
    metrics.inc("ascend_pd_proxy_client_requests_total", endpoint=trace.endpoint,
                status=str(trace.status))
    metrics.observe("ascend_pd_proxy_e2e_latency_seconds", trace.total_ms / 1000,
                    endpoint=trace.endpoint, decode=trace.decode or "")
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(trace.line())
