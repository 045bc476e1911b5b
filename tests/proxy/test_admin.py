"""The admin surface is closed by default and validates what it adds (real sockets)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from ascend_pd.proxy.admin import is_local_address, is_loopback_host


class Recorder:
    """A tiny HTTP server on loopback that records request heads and answers 200 ``{}``."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.heads: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.heads.append(head)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.sock.close()


def _add(url: str, address: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(url + "/instances/add", timeout=10, headers=headers,
                      json={"type": "decode", "instances": [address]})


def test_admin_is_disabled_on_a_public_bind_without_a_token(cluster, make_proxy, recorder):
    proxy = make_proxy(cluster["prefill"][:1], cluster["decode"][:1], host="0.0.0.0")
    url = f"http://127.0.0.1:{proxy.proxy.port}"
    resp = _add(url, recorder.address)
    assert resp.status_code == 403
    assert "--admin-token-env" in resp.json()["error"]["message"]
    assert recorder.heads == []  # not even probed
    assert httpx.post(url + "/instances/remove", timeout=5, json={
        "type": "decode", "instances": [cluster["decode"][0].address]}).status_code == 403
    assert len(proxy.state.pools["decode"].backends) == 1


def test_the_proxy_refuses_itself_and_other_proxies(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"][:1], cluster["decode"][:1])  # loopback: admin on
    for me in (f"127.0.0.1:{proxy.proxy.port}", f"localhost:{proxy.proxy.port}"):
        resp = _add(proxy.url, me)
        assert resp.status_code == 403
        assert "this proxy itself" in resp.json()["refused"][me]
    other = make_proxy(cluster["prefill"][:1], cluster["decode"][:1])
    address = f"127.0.0.1:{other.proxy.port}"
    resp = _add(proxy.url, address)
    assert resp.status_code == 403
    assert "ascend-pd proxy" in resp.json()["refused"][address]
    assert len(proxy.state.pools["decode"].backends) == 1


def test_allow_list_and_no_backend_key_to_an_unvetted_address(cluster, make_proxy, recorder):
    proxy = make_proxy(cluster["prefill"][:1], cluster["decode"][:1], admin_token="t0k",
                       backend_api_key="backend-secret", admin_networks=("10.0.0.0/8",))
    resp = _add(proxy.url, recorder.address, "t0k")
    assert resp.status_code == 403 and "outside the allowed networks" in resp.text
    assert recorder.heads == []
    open_proxy = make_proxy(cluster["prefill"][:1], cluster["decode"][:1], admin_token="t0k",
                            backend_api_key="backend-secret")
    assert _add(open_proxy.url, recorder.address, "wrong").status_code == 401
    resp = _add(open_proxy.url, recorder.address, "t0k")
    assert resp.status_code == 200 and resp.json()["added"] == [recorder.address]
    assert recorder.heads and all(b"backend-secret" not in h for h in recorder.heads)
    assert all(b"GET /health" in h for h in recorder.heads)


def test_address_helpers():
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("::")
    assert not is_loopback_host("10.0.0.1")
    assert is_local_address("127.0.0.1")
    assert not is_local_address("192.0.2.77")  # TEST-NET-1: never configured here
