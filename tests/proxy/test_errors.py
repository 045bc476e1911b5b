"""Every error is an error: broken client input and broken backend answers never pass as 200
(or as ``outcome ok`` in the access log), and no KV stays held after them."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.proxy.conftest import MODEL, sim_state, wait_for

BODY = {"model": MODEL, "prompt": "why is the link down", "max_tokens": 6}


def _outcomes(caplog) -> list[tuple[int, str]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.name == "ascend_pd.proxy.access"]
    return [(line["status"], line["outcome"]) for line in lines]


def _raw_post(url: str, extra_header: bytes, body: bytes) -> tuple[int, bytes]:
    """POST with header bytes no HTTP library would send (not UTF-8)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\n" + extra_header
                     + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


@pytest.mark.parametrize("header", [b"X-Request-Id: r\xff\xfe1\r\n",
                                    b"Authorization: Bearer \xff\xfe\r\n"])
def test_non_utf8_request_id_or_authorization_is_a_400(cluster, make_proxy, caplog, header):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    with caplog.at_level("INFO", logger="ascend_pd.proxy.access"):
        status, body = _raw_post(proxy.url, header, json.dumps(BODY).encode())
        wait_for(lambda: _outcomes(caplog), timeout=5, what="the access-log line")
    assert status == 400
    assert "printable ASCII" in json.loads(body)["error"]["message"]
    assert _outcomes(caplog) == [(400, "bad_request")]


def test_a_deeply_nested_body_is_a_400_not_a_500_logged_ok(cluster, make_proxy, caplog):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    deep = b'{"model": "m", "prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with caplog.at_level("INFO", logger="ascend_pd.proxy.access"):
        resp = httpx.post(proxy.url + "/v1/completions", content=deep, timeout=10)
        wait_for(lambda: _outcomes(caplog), timeout=5, what="the access-log line")
    assert resp.status_code == 400
    assert "nested too deeply" in resp.json()["error"]["message"]
    assert _outcomes(caplog) == [(400, "bad_request")]


def test_the_body_request_id_is_used_for_both_legs(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    resp = httpx.post(proxy.url + "/v1/completions", json={**BODY, "request_id": "body-id-7"},
                      timeout=10)
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "body-id-7"
    assert resp.json()["id"] == "cmpl-body-id-7"  # the decode leg carried it
    assert sum(sim_state(p)["held_blocks"] for p in cluster["prefill"]) == 0  # same id on P


def test_decode_stream_without_done_ends_in_an_error_event(sims, make_proxy, caplog):
    prefill = sims("prefill")
    proxy = make_proxy([prefill], [sims("decode", bad_answer="no_done")])
    with caplog.at_level("INFO", logger="ascend_pd.proxy.access"):
        with httpx.stream("POST", proxy.url + "/v1/completions",
                          json={**BODY, "stream": True}, timeout=10) as resp:
            text = resp.read().decode()
        wait_for(lambda: _outcomes(caplog), timeout=5, what="the access-log line")
    assert "data: [DONE]" not in text
    last = json.loads(text.strip().split("\n\n")[-1][len("data: "):])
    assert "without [DONE]" in last["error"]["message"]
    assert _outcomes(caplog) == [(200, "decode_stream_truncated")]
    assert sim_state(prefill)["held_blocks"] == 0


@pytest.mark.parametrize("bad", ["empty", "garbage", "huge_header"])
def test_broken_200_from_a_decode_is_retried_then_a_502(sims, make_proxy, bad):
    prefill = sims("prefill", kv_abort_timeout_s=300)
    broken, good = sims("decode", bad_answer=bad), sims("decode")
    # Another pair rescues the request...
    proxy = make_proxy([prefill], [good, broken], policy_decode="round_robin")
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["usage"]["completion_tokens"] == BODY["max_tokens"]
    # (the KV of the prefill the broken decode never pulled is drained by the good one)
    wait_for(lambda: sim_state(prefill)["held_blocks"] == 0, what="drain")
    # ... and with none left, the client gets a 502 that says what was wrong.
    solo = make_proxy([prefill], [broken])
    resp = httpx.post(solo.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 502
    message = resp.json()["error"]["message"]
    assert {"empty": "empty body", "garbage": "not a JSON object",
            "huge_header": "larger than 64 KiB"}[bad] in message


def test_broken_200_from_a_prefill_is_a_502(sims, make_proxy):
    proxy = make_proxy([sims("prefill", bad_answer="garbage")], [sims("decode")])
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 502
    assert "not a JSON object" in resp.json()["error"]["message"]


def test_cached_tokens_in_the_answer_are_the_prefills(sims, make_proxy):
    # The decode got the whole prompt as KV, so its own cached-token count says nothing;
    # the prefill's (its prefix cache) is what the client is told, streamed or not.
    proxy = make_proxy([sims("prefill")], [sims("decode")])
    body = {**BODY, "prompt": "word " * 300}  # 300 tokens: 2 whole blocks of 128

    def cached(stream: bool) -> int:
        extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
        resp = httpx.post(proxy.url + "/v1/completions", json={**body, **extra}, timeout=10)
        assert resp.status_code == 200
        if stream:
            usage = json.loads(resp.text.split("\n\n")[-3][len("data: "):])["usage"]
        else:
            usage = resp.json()["usage"]
        return int(usage["prompt_tokens_details"]["cached_tokens"])

    assert cached(stream=False) == 0  # the prefill computed it all
    assert cached(stream=False) == 256  # now its prefix cache holds 2 blocks
    assert cached(stream=True) == 256


def test_a_proxy_bug_after_the_prefill_is_a_logged_500_and_the_kv_is_drained(
        sims, make_proxy, caplog, monkeypatch):
    """The catch-all: a fault in the proxy's own code (injected here -- every input known
    to reach it was turned into a 4xx) answers 500 with the request id and an OpenAI error
    body, logs ``error`` (never ``ok``), and the prefill's KV blocks are still drained."""
    from ascend_pd.proxy import contract

    prefill = sims("prefill", kv_abort_timeout_s=300)
    proxy = make_proxy([prefill], [sims("decode")])

    def broken(body, kv):
        raise RuntimeError("a bug")

    monkeypatch.setattr(contract, "decode_body", broken)
    with caplog.at_level("INFO", logger="ascend_pd.proxy.access"):
        resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10,
                          headers={"X-Request-Id": "bug-1"})
        wait_for(lambda: _outcomes(caplog), timeout=5, what="the access-log line")
    assert resp.status_code == 500
    assert resp.headers["X-Request-Id"] == "bug-1"
    assert resp.json()["error"]["type"] == "InternalServerError"
    assert _outcomes(caplog) == [(500, "error")]
    monkeypatch.undo()  # the drain builds its own body; only the decode leg was broken
    wait_for(lambda: sim_state(prefill)["held_blocks"] == 0, timeout=10,
             what="the prefill's blocks drained")


def test_a_drain_that_finds_every_decode_failing_tries_again_later(
        sims, make_proxy, monkeypatch):
    """The only decode answers 503 to its next two requests (restarting, overloaded): the
    drain does not give up after one round -- the blocks would stay held until the
    prefill's abort timeout."""
    from ascend_pd.proxy import contract

    prefill = sims("prefill", kv_abort_timeout_s=300)
    decode = sims("decode", fail_first=2)
    proxy = make_proxy([prefill], [decode])

    def broken(body, kv):  # a request abandoned after its prefill, as in the test above
        raise RuntimeError("a bug")

    monkeypatch.setattr(contract, "decode_body", broken)
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 500
    wait_for(lambda: sim_state(prefill)["held_blocks"] == 0, timeout=20,
             what="the prefill's blocks drained in a later round")
    assert proxy.state.metrics.value("ascend_pd_proxy_drains_total", outcome="ok") == 1
