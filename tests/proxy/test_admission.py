"""Admission control and circuit breakers through a real proxy, against simulated vLLMs.

What a user notices: under overload the proxy answers 429/503 with Retry-After and an
OpenAI-style error instead of hanging or passing everything on; a backend never sees more
than its in-flight limit; a backend answering 5xx stops getting traffic (its /health still
says 200) and gets exactly one probe when its breaker half-opens; 4xx never trips it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from tests.proxy.conftest import MODEL, addr, sim_state, wait_for

BODY = {"model": MODEL, "prompt": "hello there", "max_tokens": 8}


def _burst(url: str, n: int, body: dict[str, Any] = BODY) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            return list(await asyncio.gather(*(client.post(url + "/v1/completions", json=body)
                                               for _ in range(n))))

    return asyncio.run(main())


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_overload_is_429_with_retry_after_and_no_backend_exceeds_its_limit(sims, make_proxy):
    prefill, decode = sims("prefill"), sims("decode", decode_ms_per_token=25)
    proxy = make_proxy([prefill], [decode], max_in_flight=4, queue_size=8,
                       queue_timeout_s=20)
    responses = _burst(proxy.url, 40)
    statuses = sorted({r.status_code for r in responses})
    assert statuses == [200, 429], statuses
    rejected = [r for r in responses if r.status_code == 429]
    # 4 running + 8 queued per role at most: the rest is turned away at once.
    assert len(rejected) >= 40 - 2 * (4 + 8)
    for r in rejected:
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["type"] == "RateLimitError"
    assert sim_state(decode)["peak_running"] <= 4
    assert sim_state(prefill)["peak_running"] <= 4
    text = httpx.get(proxy.url + "/metrics", timeout=5).text
    assert _metric(text, "ascend_pd_proxy_admission_rejected_total",
                   reason="queue_full") == len(rejected)
    assert _metric(text, "ascend_pd_proxy_queue_wait_seconds_count") > 0
    assert re.search(r'ascend_pd_proxy_queue_depth\{role="decode"\} 0', text)


def test_a_wait_longer_than_the_queue_timeout_is_503_with_retry_after(sims, make_proxy):
    prefill, decode = sims("prefill"), sims("decode", decode_ms_per_token=100)
    proxy = make_proxy([prefill], [decode], max_in_flight=1, queue_timeout_s=0.3)
    responses = _burst(proxy.url, 3, {**BODY, "max_tokens": 10})  # ~1 s each on decode
    assert sorted(r.status_code for r in responses) == [200, 503, 503]
    late = next(r for r in responses if r.status_code == 503)
    assert late.headers["Retry-After"].isdigit()
    assert "retry later" in late.json()["error"]["message"]
    # A request that waited for decode had already prefilled: its KV is drained, not held.
    wait_for(lambda: sim_state(prefill)["held_blocks"] == 0, what="prefill holds no blocks")


def test_breaker_stops_traffic_to_a_5xx_backend_and_probes_once_when_half_open(
        sims, make_proxy):
    prefill = sims("prefill")
    good, bad = sims("decode"), sims("decode", error_rate=1.0)  # /health stays 200
    proxy = make_proxy([prefill], [good, bad], breaker_failures=2, breaker_open_s=60)
    for _ in range(12):
        assert httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10
                          ).status_code == 200
    assert sim_state(bad)["requests"] == 2  # opened after 2 failures; without it ~6
    text = httpx.get(proxy.url + "/metrics", timeout=5).text
    assert _metric(text, "ascend_pd_proxy_breaker_open", backend=bad.address) == 1
    assert httpx.get(proxy.url + "/health", timeout=5).json()["admission"][
        "breakers_open"] == [bad.address]
    # Let the 60 s pass (a shared machine makes short real waits flaky).
    breaker = proxy.state.admission.breaker(proxy.state.pools["decode"].find(addr(bad)))
    breaker.opened_at -= 60
    for _ in range(6):
        assert httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10
                          ).status_code == 200
    assert sim_state(bad)["requests"] == 3  # one probe, failed, open again


def test_client_errors_never_open_a_breaker(sims, make_proxy):
    prefill, decode = sims("prefill"), sims("decode")
    proxy = make_proxy([prefill], [decode], breaker_failures=1)
    for _ in range(5):
        resp = httpx.post(proxy.url + "/v1/completions", timeout=10,
                          json={**BODY, "model": "no-such-model"})
        assert resp.status_code == 404
    assert httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10).status_code == 200
    assert proxy.state.admission.to_dict()["breakers_open"] == []
