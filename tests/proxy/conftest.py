"""Fixtures: simulated vLLM servers as real child processes and an in-process proxy.

The proxy runs on its own event loop in a thread so tests can use ordinary blocking clients
(httpx, the official openai client) exactly as a user would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import httpx
import pytest

from ascend_pd.proxy import BackendAddress, ProxyConfig, RunningProxy, start_proxy
from ascend_pd.simserver import SimServerProcess

MODEL = "sim-model"


class ProxyThread:
    """A proxy listening on 127.0.0.1:<ephemeral> served from a background event loop."""

    def __init__(self, config: ProxyConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy: RunningProxy = self.call(start_proxy(config))

    def call(self, coro: Any, timeout: float = 10) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def state(self) -> Any:
        return self.proxy.state

    def totals(self) -> dict[str, dict[str, int]]:
        return self.state.totals()  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.call(self.proxy.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def sim_state(server: SimServerProcess) -> dict[str, Any]:
    return httpx.get(server.url + "/sim/state", timeout=5).json()  # type: ignore[no-any-return]


def addr(server: SimServerProcess) -> BackendAddress:
    return BackendAddress(server.host, server.port)


@pytest.fixture
def sims() -> Iterator[Callable[..., SimServerProcess]]:
    """Factory: ``sims("decode", hang=True)`` starts a sim server, stopped after the test."""
    started: list[SimServerProcess] = []

    def make(role: str, **knobs: Any) -> SimServerProcess:
        knobs.setdefault("decode_ms_per_token", 0)
        knobs.setdefault("prefill_ms_per_1k", 0)
        server = SimServerProcess(role, model=MODEL, **knobs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, list[SimServerProcess]]]:
    """Two healthy prefills and two healthy decodes shared by a test module."""
    servers = {
        "prefill": [SimServerProcess("prefill", model=MODEL, prefill_ms_per_1k=0).start()
                    for _ in range(2)],
        "decode": [SimServerProcess("decode", model=MODEL, decode_ms_per_token=0).start()
                   for _ in range(2)],
    }
    yield servers
    for group in servers.values():
        for server in group:
            server.stop()


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., ProxyThread]]:
    """Factory: ``make_proxy([p...], [d...], **config)``; asserts accounting is back to 0."""
    proxies: list[ProxyThread] = []

    def make(prefill: list[SimServerProcess], decode: list[SimServerProcess],
             **overrides: Any) -> ProxyThread:
        config = ProxyConfig(prefill=tuple(addr(p) for p in prefill),
                             decode=tuple(addr(d) for d in decode), host="127.0.0.1", port=0,
                             health_interval_s=0.2, health_timeout_s=0.5)
        proxy = ProxyThread(replace(config, **overrides))
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        try:
            wait_for(lambda p=proxy: all(v == {"in_flight": 0, "outstanding_tokens": 0}  # type: ignore[misc]
                                         for v in p.totals().values()),
                     timeout=10, what="proxy accounting back to zero")
        finally:
            proxy.stop()
