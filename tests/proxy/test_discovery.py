"""DNS discovery: a real DNS server on loopback (dnslib) answers the decode Service's name;
changing its answer adds and removes backends while requests run, and none fails."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSServer

from ascend_pd.proxy import BackendAddress, ProxyConfig
from ascend_pd.proxy.discovery import DiscoveryTarget
from ascend_pd.simserver import SimServerProcess

from .conftest import MODEL, ProxyThread, addr, sim_state, wait_for

NAME = "decode-0-api.ascend-pd.svc"
COMPLETION = {"model": MODEL, "prompt": "scale me while I run", "max_tokens": 4}


class Zone(BaseResolver):  # type: ignore[misc]
    """Answers A records for NAME from a list the test changes."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.lock = threading.Lock()

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        with self.lock:
            addresses = list(self.addresses)
        if str(request.q.qname).rstrip(".") == NAME and request.q.qtype == QTYPE.A:
            for address in addresses:
                reply.add_answer(RR(NAME, QTYPE.A, rdata=A(address), ttl=0))
        return reply

    def set(self, *addresses: str) -> None:
        with self.lock:
            self.addresses = list(addresses)


class _Quiet:
    def __getattr__(self, _name: str) -> Any:
        return lambda *a, **k: None


@pytest.fixture
def zone() -> Iterator[tuple[Zone, int]]:
    resolver = Zone()
    server = DNSServer(resolver, address="127.0.0.1", port=0, logger=_Quiet())
    server.start_thread()
    yield resolver, server.server.server_address[1]
    server.stop()
    server.server.server_close()


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def test_decode_backends_follow_dns_under_load(zone: tuple[Zone, int]) -> None:
    resolver, dns_port = zone
    port = free_port("127.0.0.2")
    prefill = SimServerProcess("prefill", model=MODEL, prefill_ms_per_1k=0).start()
    decodes = {ip: SimServerProcess("decode", model=MODEL, host=ip, port=port,
                                    decode_ms_per_token=5).start()
               for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4")}
    resolver.set("127.0.0.2")
    config = ProxyConfig(prefill=(addr(prefill),), decode=(), host="127.0.0.1", port=0,
                         health_interval_s=0.2, health_timeout_s=0.5,
                         discover=(DiscoveryTarget("decode", NAME, port),),
                         discover_interval_s=0.1, discover_dns=f"127.0.0.1:{dns_port}")
    proxy = ProxyThread(config)
    statuses: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                statuses.append(http.post(proxy.url + "/v1/completions",
                                          json=COMPLETION).status_code)

    def decode_pool() -> set[str]:
        return {str(b.address) for b in proxy.state.pools["decode"].backends}

    def served(ip: str) -> int:
        return int(sim_state(decodes[ip])["success"])

    try:
        assert decode_pool() == {f"127.0.0.2:{port}"}  # resolved before serving
        with ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(client)
            wait_for(lambda: served("127.0.0.2") > 5, what="traffic on .2")
            resolver.set("127.0.0.2", "127.0.0.3")  # scale up
            wait_for(lambda: served("127.0.0.3") > 5, what="traffic on the new .3")
            resolver.set("127.0.0.3")  # .2 goes away
            wait_for(lambda: decode_pool() == {f"127.0.0.3:{port}"}, what=".2 removed")
            before = served("127.0.0.2")
            resolver.set("127.0.0.3", "127.0.0.4")
            wait_for(lambda: served("127.0.0.4") > 5, what="traffic on .4")
            stop.set()
        assert served("127.0.0.2") <= before + 4  # nothing new after removal (in-flight only)
        assert statuses and set(statuses) == {200}, f"failed requests: {statuses.count(500)}"
        assert BackendAddress("127.0.0.4", port) in {b.address for b in
                                                     proxy.state.pools["decode"].backends}
    finally:
        stop.set()
        proxy.stop()
        prefill.stop()
        for server in decodes.values():
            server.stop()


def test_a_failed_lookup_keeps_the_backends(zone: tuple[Zone, int]) -> None:
    resolver, _ = zone
    prefill = SimServerProcess("prefill", model=MODEL, prefill_ms_per_1k=0).start()
    decode = SimServerProcess("decode", model=MODEL, decode_ms_per_token=0).start()
    port = free_port("127.0.0.1")  # nothing answers DNS here
    config = ProxyConfig(prefill=(addr(prefill),), decode=(addr(decode),), host="127.0.0.1",
                         port=0, discover=(DiscoveryTarget("decode", NAME, decode.port),),
                         discover_interval_s=0.1, discover_dns=f"127.0.0.1:{port}")
    proxy = ProxyThread(config)
    try:
        resp = httpx.post(proxy.url + "/v1/completions", json=COMPLETION, timeout=10)
        assert resp.status_code == 200
        assert [str(b.address) for b in proxy.state.pools["decode"].backends] == [
            str(addr(decode))]
    finally:
        proxy.stop()
        prefill.stop()
        decode.stop()
        del resolver
