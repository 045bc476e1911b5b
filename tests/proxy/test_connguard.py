"""Connection hygiene with real sockets on loopback: slow heads and bodies are cut off,
idle floods cannot starve /health, deep JSON is a 400, and at the cap everyone busy means a
503 with Retry-After -- never a hang or fd exhaustion. Bounds are generous upper limits
(shared machine), never timing targets."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from ascend_pd.proxy.inbound import json_too_deep
from tests.proxy.conftest import MODEL, wait_for

HEAD = (b"POST /v1/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n")


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the server closes; (closed in time, what it sent)."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return False, data
    except ConnectionResetError:
        pass
    return True, data


def test_slow_head_is_cut_off_and_a_slow_body_gets_408(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"], header_timeout_s=0.5,
                       body_timeout_s=0.5)
    with _connect(proxy.url) as slow:
        slow.sendall(HEAD)  # ... and never the blank line
        t = time.monotonic()
        closed, _ = _closed_within(slow, 10)
        assert closed and time.monotonic() - t < 5
    with _connect(proxy.url) as body:
        body.sendall(HEAD + b"Content-Length: 1000\r\n\r\n{\"model\":")
        closed, data = _closed_within(body, 10)
    assert closed and data.startswith(b"HTTP/1.1 408")
    assert b"request body not received" in data
    assert httpx.get(proxy.url + "/health", timeout=5).status_code == 200


def test_a_flood_of_idle_connections_cannot_starve_health(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"], max_connections=20)
    flood = [_connect(proxy.url) for _ in range(100)]  # 5x the cap, none sends a byte
    try:
        for _ in range(3):
            t = time.monotonic()
            assert httpx.get(proxy.url + "/health", timeout=5).status_code == 200
            assert time.monotonic() - t < 5
        conns = httpx.get(proxy.url + "/health", timeout=5).json()["connections"]
        assert conns["open"] <= 20 and conns["evicted"] >= 80
        resp = httpx.post(proxy.url + "/v1/completions", timeout=10,
                          json={"model": MODEL, "prompt": "hi", "max_tokens": 2})
        assert resp.status_code == 200
    finally:
        for s in flood:
            s.close()


def test_idle_keepalive_connections_are_closed(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"], idle_timeout_s=0.5)
    with _connect(proxy.url) as idle:
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: proxy\r\n\r\n")
        closed, data = _closed_within(idle, 10)
    assert closed and data.startswith(b"HTTP/1.1 200")
    wait_for(lambda: proxy.state.guard.to_dict()["open"] == 0, what="no open connections")


def test_at_the_cap_with_everyone_busy_a_newcomer_gets_503(sims, make_proxy):
    prefill, decode = sims("prefill"), sims("decode", decode_ms_per_token=200)
    proxy = make_proxy([prefill], [decode], max_connections=2)
    busy = [_connect(proxy.url) for _ in range(2)]
    try:
        body = b'{"model": "%s", "prompt": "hi", "max_tokens": 10}' % MODEL.encode()
        for s in busy:
            s.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        wait_for(lambda: all(c.busy for c in proxy.state.guard.conns.values())
                 and len(proxy.state.guard.conns) == 2, what="two busy connections")
        with _connect(proxy.url) as newcomer:
            newcomer.sendall(b"GET /health HTTP/1.1\r\nHost: proxy\r\n\r\n")
            closed, data = _closed_within(newcomer, 10)
        assert closed and data.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 1" in data
        for s in busy:  # the busy ones are served to the end
            assert s.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for s in busy:
            s.close()


def test_deeply_nested_json_is_a_400_not_a_500(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    resp = httpx.post(proxy.url + "/v1/completions", timeout=10,
                      content=b"[" * 100_000 + b"]" * 100_000,
                      headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "nested too deeply (more than 64" in resp.json()["error"]["message"]


@pytest.mark.parametrize(("text", "deep"), [
    (b'{"a": [[[1]]]}', False),
    (b'{"a": "[[[[[[[[[[[[[[[[[["}', False),  # brackets inside strings do not nest
    (b'{"a": "\\"[[[[[[[[[[[[[["}', False),  # nor after an escaped quote
    (b"[" * 9 + b"]" * 9, True),
    (b'[{"x": [1, 2]}, {"y": [3]}, [4], [5], [6], [7], [8], [9]]', False),  # wide, not deep
])
def test_json_depth_scanner(text, deep):
    assert json_too_deep(text, 8) is deep


def test_a_client_gone_mid_request_leaves_no_connection_behind(sims, make_proxy):
    """The handler of a request whose client left ends after the connection closed; it
    must not arm the idle timer (60 s) again, which kept every such connection and its
    buffers alive for a minute: ~15 MB of RSS creep over the 20,000-request soak."""
    import gc

    import httpx

    from ascend_pd.proxy.connguard import GuardedConnection
    from tests.proxy.conftest import MODEL, wait_for

    prefill = sims("prefill", prefill_ms_per_1k=100_000)  # a prompt of a few words: ~0.6 s
    proxy = make_proxy([prefill], [sims("decode")], idle_timeout_s=60.0)
    body = {"model": MODEL, "prompt": "why is the link down", "max_tokens": 4}
    for _ in range(3):
        try:
            httpx.post(proxy.url + "/v1/completions", json=body, timeout=0.2)
        except httpx.ReadTimeout:
            pass

    def none_left() -> bool:
        gc.collect()
        return not [o for o in gc.get_objects() if isinstance(o, GuardedConnection)]

    wait_for(none_left, timeout=15, what="the abandoned connections released")
