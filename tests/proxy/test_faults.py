"""Failure paths a user would notice: retries, upstream errors, dying and hung backends,
client disconnects, ejection and recompute. Every proxy's accounting must return to zero
(checked by the make_proxy fixture after each test)."""

from __future__ import annotations

import json
import socket

import httpx

from tests.proxy.conftest import MODEL, sim_state, wait_for

BODY = {"model": MODEL, "prompt": "why is the link down", "max_tokens": 8}


def _metric(proxy, name: str, **labels: str) -> float:
    return proxy.state.metrics.value(name, **labels)  # type: ignore[no-any-return]


def test_prefill_5xx_is_retried_on_another_prefill(sims, make_proxy):
    broken, good = sims("prefill", fail_first=1000), sims("prefill")
    decode = sims("decode")
    proxy = make_proxy([broken, good], [decode], policy_prefill="round_robin")
    for _ in range(4):
        resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
        assert resp.status_code == 200, resp.text
    assert sim_state(broken)["errors"] >= 1
    assert _metric(proxy, "ascend_pd_proxy_retries_total", role="prefill") >= 1


def test_upstream_4xx_is_returned_as_is_and_not_retried(sims, make_proxy):
    p1, p2 = sims("prefill"), sims("prefill")
    d1, d2 = sims("decode"), sims("decode")
    proxy = make_proxy([p1, p2], [d1, d2])
    # Decode refuses: context length. Its status and body reach the client unchanged.
    resp = httpx.post(proxy.url + "/v1/completions", json={**BODY, "max_tokens": 10**6},
                      timeout=10)
    assert resp.status_code == 400
    assert "maximum context length" in resp.json()["error"]["message"]
    # Not retried on the other decode; the prefill's KV is drained (one 1-token leg), not
    # left held until P's abort timeout.
    wait_for(lambda: _metric(proxy, "ascend_pd_proxy_drains_total", outcome="ok") == 1,
             what="drain after the decode's 400")
    assert sim_state(d1)["requests"] + sim_state(d2)["requests"] == 2
    assert sim_state(p1)["held_blocks"] + sim_state(p2)["held_blocks"] == 0
    # Prefill refuses: unknown model (404), not retried on the other prefill.
    resp = httpx.post(proxy.url + "/v1/completions", json={**BODY, "model": "nope"},
                      timeout=10)
    assert resp.status_code == 404
    assert "does not exist" in resp.json()["error"]["message"]
    assert sim_state(p1)["requests"] + sim_state(p2)["requests"] == 2


def test_all_prefills_failing_returns_their_error_not_200(sims, make_proxy):
    proxy = make_proxy([sims("prefill", error_rate=1.0)], [sims("decode")])
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 500
    assert resp.json()["error"]["type"] == "InternalServerError"


def test_decode_dying_mid_stream_ends_with_an_error_event(sims, make_proxy):
    decode = sims("decode", crash_after=0)
    proxy = make_proxy([sims("prefill")], [decode])
    with httpx.stream("POST", proxy.url + "/v1/completions", json={**BODY, "stream": True},
                      timeout=10) as resp:
        assert resp.status_code == 200
        text = resp.read().decode()
    assert "[DONE]" not in text
    last = json.loads(text.strip().split("\n\n")[-1][len("data: "):])
    assert "failed mid-stream" in last["error"]["message"]
    assert decode.wait(5) == 1


def test_prefill_without_kv_params_is_a_502_not_a_local_prefill(sims, make_proxy):
    # A prefill started without a KV connector answers 200 with no kv_transfer_params.
    plain, decode = sims("prefill", no_kv_params=True), sims("decode")
    proxy = make_proxy([plain], [decode])
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 502
    assert "returned no kv_transfer_params" in resp.json()["error"]["message"]
    assert sim_state(plain)["success"] == 1
    assert sim_state(decode)["requests"] == 0  # never a decode that would prefill locally
    assert _metric(proxy, "ascend_pd_proxy_missing_kv_params_total",
                   backend=plain.address) == 1


def test_storage_connector_prefill_without_kv_params_is_decoded_with_kv_params_optional(
        sims, make_proxy):
    # The storage connector's P writes KV to shared storage and returns no
    # kv_transfer_params; the plan starts the proxy with --kv-params optional for it.
    storage, decode = sims("prefill", no_kv_params=True), sims("decode", no_kv_params=True)
    proxy = make_proxy([storage], [decode], kv_params="optional")
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["text"]
    assert sim_state(decode)["requests"] == 1
    assert _metric(proxy, "ascend_pd_proxy_missing_kv_params_total",
                   backend=storage.address) == 0


def test_every_leg_carries_the_clients_key_to_backends_started_with_api_key(sims, make_proxy):
    # vLLM with --api-key answers 401 to a leg without the key; a drain refused that way
    # would leave P's blocks held until its abort timeout.
    key = {"Authorization": "Bearer sk-backend"}
    prefill = sims("prefill", api_key="sk-backend", kv_abort_timeout_s=300)
    good = sims("decode", api_key="sk-backend")
    hung = sims("decode", api_key="sk-backend", hang=True)
    proxy = make_proxy([prefill], [good, hung], policy_decode="round_robin",
                       health_interval_s=60)
    assert httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10).status_code == 401
    try:  # round_robin's first decode pick is the hung one: the client gives up
        httpx.post(proxy.url + "/v1/completions", json=BODY, headers=key, timeout=0.5)
    except httpx.ReadTimeout:
        pass
    wait_for(lambda: _metric(proxy, "ascend_pd_proxy_drains_total", outcome="ok") == 1,
             what="drain leg")
    assert sim_state(prefill)["held_blocks"] == 0
    assert sim_state(good)["unauthorized"] == 0
    assert httpx.post(proxy.url + "/v1/completions", json=BODY, headers=key,
                      timeout=10).status_code == 200


def test_client_disconnect_mid_stream_cancels_decode_and_frees_kv(sims, make_proxy):
    prefill = sims("prefill")
    decode = sims("decode", decode_ms_per_token=100)
    proxy = make_proxy([prefill], [decode])
    with httpx.stream("POST", proxy.url + "/v1/completions",
                      json={**BODY, "max_tokens": 100, "stream": True}, timeout=10) as resp:
        next(resp.iter_bytes())
    wait_for(lambda: sim_state(decode)["aborted"] == 1, what="decode leg aborted")
    assert sim_state(decode)["running"] == 0
    assert sim_state(prefill)["held_blocks"] == 0


def test_client_disconnect_during_prefill_lets_it_finish_and_drains_its_kv(sims, make_proxy):
    # A prefill that finished holds its blocks whether or not its answer is read, and a
    # closed connection cannot tell the proxy whether it had: it is let finish, then drained.
    prefill = sims("prefill", prefill_ms_per_1k=100_000, kv_abort_timeout_s=300)  # ~0.6 s
    decode = sims("decode")
    proxy = make_proxy([prefill], [decode])
    try:
        httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=0.2)
    except httpx.ReadTimeout:
        pass
    wait_for(lambda: _metric(proxy, "ascend_pd_proxy_drains_total", outcome="ok") == 1,
             what="drain of the abandoned prefill")
    assert sim_state(prefill)["aborted"] == 0
    assert sim_state(prefill)["held_blocks"] == 0
    assert sim_state(prefill)["kv_force_freed"] == 0
    assert sim_state(decode)["requests"] == 1  # the drain; no decode for the client


def test_max_tokens_zero_and_no_usable_decode_leave_no_blocks_held(sims, make_proxy):
    prefill = sims("prefill", kv_abort_timeout_s=300)
    decode = sims("decode")
    proxy = make_proxy([prefill], [decode], eject_after=1)
    resp = httpx.post(proxy.url + "/v1/completions", json={**BODY, "max_tokens": 0},
                      timeout=10)
    assert resp.status_code == 400
    wait_for(lambda: _metric(proxy, "ascend_pd_proxy_drains_total", outcome="ok") == 1,
             what="drain after max_tokens 0")
    assert sim_state(prefill)["held_blocks"] == 0
    decode.stop()
    wait_for(lambda: httpx.get(proxy.url + "/health", timeout=5).status_code == 503,
             what="the decode ejected")
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 503
    assert "not prefilled" in resp.json()["error"]["message"]
    assert sim_state(prefill)["requests"] == 1  # no prefill for a request no decode can take


def test_decode_failing_after_it_got_the_kv_is_retried_on_another_pair(sims, make_proxy):
    # The first decode answers 500 after it got the request (it may have pulled the KV):
    # the same kv_transfer_params would be refused by the next decode, so the proxy
    # prefills again for the other decode instead of returning a 400 "KV transfer failed".
    prefill = sims("prefill", kv_abort_timeout_s=300)
    broken, good = sims("decode", error_rate=1.0), sims("decode")
    proxy = make_proxy([prefill], [good, broken], policy_decode="round_robin")
    for stream in (False, True):
        resp = httpx.post(proxy.url + "/v1/completions", json={**BODY, "stream": stream},
                          timeout=10)
        assert resp.status_code == 200, resp.text
        assert (resp.text.endswith("data: [DONE]\n\n") if stream
                else resp.json()["usage"]["completion_tokens"] == BODY["max_tokens"])
    assert sim_state(prefill)["requests"] >= 3  # a second pair was prefilled at least once
    assert _metric(proxy, "ascend_pd_proxy_retries_total", role="pair") >= 1
    wait_for(lambda: sim_state(prefill)["held_blocks"] == 0, what="every KV consumed or drained")
    assert sim_state(good)["invalid_kv"] == 0
    # With only the broken decode left, the client gets a clear 5xx, not a 400 about KV.
    solo = make_proxy([prefill], [broken])
    resp = httpx.post(solo.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 500
    assert "no decode could serve the request after its prefill" in \
        resp.json()["error"]["message"]
    # A decode that answers 500 to everything cannot take the drain either: counted, and P's
    # abort timeout is then the only way out.
    wait_for(lambda: _metric(solo, "ascend_pd_proxy_drains_total", outcome="error") >= 1,
             what="the failed drain counted")


def test_abandoned_request_after_prefill_is_drained(sims, make_proxy):
    prefill = sims("prefill", kv_abort_timeout_s=300)
    good, hung = sims("decode"), sims("decode", hang=True)
    # round_robin's first pick is the second backend: the hung one.
    proxy = make_proxy([prefill], [good, hung], policy_decode="round_robin",
                       health_interval_s=60)
    try:
        httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=0.5)
    except httpx.ReadTimeout:
        pass
    # The prefill answered and holds blocks; the drain leg on the good decode frees them.
    wait_for(lambda: _metric(proxy, "ascend_pd_proxy_drains_total", outcome="ok") == 1,
             what="drain leg")
    assert sim_state(prefill)["held_blocks"] == 0
    assert sim_state(prefill)["kv_force_freed"] == 0


def test_dead_decode_is_ejected_then_restored(sims, make_proxy):
    prefill, stays = sims("prefill"), sims("decode")
    dies = sims("decode")
    port = dies.port
    proxy = make_proxy([prefill], [stays, dies], eject_after=2, restore_after=2)

    def healthy(address: str) -> bool:
        decodes = httpx.get(proxy.url + "/health", timeout=5).json()["backends"]["decode"]
        return next(b["healthy"] for b in decodes if b["address"] == address)

    dies.stop()
    wait_for(lambda: not healthy(dies.address), what="ejection")
    for _ in range(4):  # no request is sent to the dead backend any more
        assert httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10).status_code \
            == 200
    with socket.socket() as probe:  # the port is free again for the restart
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    sims("decode", port=port)
    wait_for(lambda: healthy(dies.address), what="restoration")


def test_recompute_continues_without_showing_it(sims, make_proxy):
    prefill = sims("prefill")
    decode = sims("decode", recompute_rate=1.0)
    proxy = make_proxy([prefill], [decode])
    with httpx.stream("POST", proxy.url + "/v1/completions",
                      json={**BODY, "stream": True}, timeout=10) as resp:
        text = resp.read().decode()
    events = [e[len("data: "):] for e in text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert events.count("[DONE]") == 1
    assert "recomputed" not in text
    chunks = [json.loads(e) for e in events[:-1]]
    assert sum(bool(c["choices"][0]["text"]) for c in chunks) == BODY["max_tokens"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert _metric(proxy, "ascend_pd_proxy_recomputes_total") >= 1
    # Chat, non-streamed: one merged answer with every token.
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    chat = httpx.post(proxy.url + "/v1/chat/completions", timeout=10,
                      json={"model": MODEL, "messages": messages, "max_tokens": 8}).json()
    assert chat["usage"]["completion_tokens"] == 8
    assert len(chat["choices"][0]["message"]["content"].split()) == 8
    assert chat["choices"][0]["stop_reason"] is None
    assert sim_state(prefill)["held_blocks"] == 0
