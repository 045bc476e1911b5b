"""Requests through the proxy against real simulated prefill/decode processes."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.proxy.conftest import MODEL, sim_state, wait_for

COMPLETION = {"model": MODEL, "prompt": "tell me about roce links", "max_tokens": 5}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 4}


def _events(text: str) -> list[str]:
    return [e[len("data: "):] for e in text.split("\n\n") if e.startswith("data: ")]


@pytest.mark.parametrize(("path", "body"), [("/v1/completions", COMPLETION),
                                            ("/v1/chat/completions", CHAT)])
def test_non_stream_answers_with_usage_and_the_request_id(cluster, make_proxy, path, body):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    resp = httpx.post(proxy.url + path, json=body, headers={"X-Request-Id": "rid-123"},
                      timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    data = resp.json()
    # The decode leg carried the client's id (vLLM builds the response id from it) ...
    assert data["id"].endswith("rid-123")
    assert data["usage"]["completion_tokens"] == body["max_tokens"]
    # ... and it pulled the blocks the prefill held for that same id: nothing stays held.
    assert sum(sim_state(p)["held_blocks"] for p in cluster["prefill"]) == 0


@pytest.mark.parametrize(("path", "body"), [("/v1/completions", COMPLETION),
                                            ("/v1/chat/completions", CHAT)])
def test_stream_is_sse_ending_with_done(cluster, make_proxy, path, body):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", proxy.url + path, json=stream_body, timeout=10) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        text = resp.read().decode()
    events = _events(text)
    assert events[-1] == "[DONE]"
    usage = json.loads(events[-2])["usage"]
    assert usage["completion_tokens"] == body["max_tokens"]
    assert "X-Request-Id".lower() in resp.headers


def test_missing_request_id_gets_a_uuid(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    resp = httpx.post(proxy.url + "/v1/completions", json=COMPLETION, timeout=10)
    rid = resp.headers["x-request-id"]
    assert len(rid) == 36
    assert resp.json()["id"] == "cmpl-" + rid


def test_openai_client_chat_and_streaming_completions(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0)
    chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert chat.choices[0].message.content
    assert chat.usage is not None
    assert chat.usage.completion_tokens == 3
    pieces = [c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="count to four", max_tokens=4, stream=True) if c.choices]
    assert len(pieces) == 4
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]


def test_health_metrics_and_access_log(cluster, make_proxy, caplog):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    with caplog.at_level("INFO", logger="ascend_pd.proxy.access"):
        httpx.post(proxy.url + "/v1/completions", json=COMPLETION,
                   headers={"X-Request-Id": "log-me"}, timeout=10)
        # The line is written just after the answer went out, not before it.
        wait_for(lambda: any(r.name == "ascend_pd.proxy.access" for r in caplog.records),
                 timeout=5, what="the access-log line")
    line = json.loads(next(r.getMessage() for r in caplog.records
                           if r.name == "ascend_pd.proxy.access"))
    assert line["request_id"] == "log-me"
    assert line["prefill"]
    assert line["decode"]
    assert line["status"] == 200
    assert line["prefill_ms"] is not None
    assert line["total_ms"] >= line["first_byte_ms"]
    health = httpx.get(proxy.url + "/health", timeout=5)
    assert health.status_code == 200
    assert len(health.json()["backends"]["decode"]) == 2
    metrics = httpx.get(proxy.url + "/metrics", timeout=5).text
    assert 'ascend_pd_proxy_requests_total{backend="' in metrics
    assert "ascend_pd_proxy_e2e_latency_seconds_bucket" in metrics
    assert "ascend_pd_proxy_decode_first_byte_seconds_count" in metrics


def test_oversized_body_is_413(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"], max_body_bytes=1024)
    resp = httpx.post(proxy.url + "/v1/completions",
                      json={**COMPLETION, "prompt": "x" * 5000}, timeout=10)
    assert resp.status_code == 413


def test_admin_endpoints_need_the_token(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"][:1], cluster["decode"][:1], admin_token="s3cret")
    body = {"type": "decode", "instances": [cluster["decode"][1].address]}
    assert httpx.post(proxy.url + "/instances/add", json=body, timeout=5).status_code == 401
    ok = httpx.post(proxy.url + "/instances/add", json=body, timeout=5,
                    headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert ok.json()["added"] == [cluster["decode"][1].address]
    dead = httpx.post(proxy.url + "/instances/add", timeout=5,
                      json={"type": "decode", "instances": ["127.0.0.1:9"]},
                      headers={"Authorization": "Bearer s3cret"})
    assert dead.status_code == 502
    gone = httpx.post(proxy.url + "/instances/remove", json=body, timeout=5,
                      headers={"Authorization": "Bearer s3cret"})
    assert gone.json()["backends"] == [cluster["decode"][0].address]
