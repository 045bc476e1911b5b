"""Run the proxy: in-process for tests (``start_proxy``) or until a signal (``serve``).

Client connections go through the connection guard (``proxy.connguard``) via
``GuardedSite``. ``serve`` with ``workers`` > 1 forks N worker processes that listen on the
same port (``SO_REUSEPORT``: the kernel spreads new connections over them), each with its own
pools, health checks, admission gate and upstream connections (``proxy.workers``).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ascend_pd.errors import ProxyError
from ascend_pd.proxy.app import STATE_KEY, create_app
from ascend_pd.proxy.config import ProxyConfig
from ascend_pd.proxy.connguard import ConnectionGuard
from ascend_pd.proxy.state import ProxyState

log = logging.getLogger("ascend_pd.proxy")
#: file descriptors kept free of client connections: upstream legs, idle pools, logs
FD_RESERVE = 256


class GuardedSite(web.BaseSite):
    """A TCP site whose connections are counted and timed by a ConnectionGuard."""

    def __init__(self, runner: web.BaseRunner, guard: ConnectionGuard, host: str, port: int,
                 *, backlog: int = 4096, reuse_port: bool = False) -> None:
        super().__init__(runner, backlog=backlog)
        self.guard, self.host, self.port, self.reuse_port = guard, host, port, reuse_port

    @property
    def name(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.factory(server), self.host or None, self.port, backlog=self._backlog,
            reuse_address=True, reuse_port=self.reuse_port or None)


def _fit_connections(guard: ConnectionGuard) -> None:
    """Raise the soft fd limit to the hard one, and keep the connection cap below it: each
    client connection may hold one upstream connection too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    fit = max(1, (soft - FD_RESERVE) // 2)
    if guard.max_connections > fit:
        log.warning("max_connections %d lowered to %d: the open-files limit is %d",
                    guard.max_connections, fit, soft)
        guard.max_connections = fit


@dataclass
class RunningProxy:
    """A listening proxy. ``port`` is the bound port (useful when the config said 0)."""

    runner: web.AppRunner
    state: ProxyState
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_proxy(config: ProxyConfig, *, reuse_port: bool = False,
                      extra_sites: Callable[[web.AppRunner], list[web.BaseSite]] | None = None,
                      ) -> RunningProxy:
    """Start listening on ``config.host:config.port``; ProxyError when the bind fails.

    ``extra_sites`` (workers): more sites on the same app, e.g. a worker's unix socket.
    """
    app = create_app(config)
    state = app[STATE_KEY]
    _fit_connections(state.guard)
    # handler_cancellation: a client that disconnects cancels its handler, which closes the
    # in-flight upstream leg (and so aborts the request on the backend) at once.
    # keepalive_timeout: aiohttp's own idle timer, set to the guard's so neither surprises.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                           keepalive_timeout=config.idle_timeout_s)
    await runner.setup()
    site = GuardedSite(runner, state.guard, config.host, config.port, reuse_port=reuse_port)
    try:
        await site.start()
        for extra in extra_sites(runner) if extra_sites else ():
            await extra.start()
    except OSError as exc:
        await runner.cleanup()
        raise ProxyError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}",
                         hint="pick another --port or stop what holds it") from exc
    sockets = [a for a in runner.addresses if isinstance(a, tuple)]
    state.sockets = [(str(a[0]), int(a[1])) for a in sockets]
    port = state.sockets[0][1] if state.sockets else config.port
    proxy = RunningProxy(runner, state, config.host, port)
    proxy.state.metaserver_url = config.metaserver_for(port)
    log.info("ascend-pd proxy listening on %s; prefill %s (%s); decode %s (%s); loop %s",
             proxy.url, ", ".join(map(str, config.prefill)), config.policy_prefill,
             ", ".join(map(str, config.decode)), config.policy_decode,
             type(asyncio.get_running_loop()).__module__.split(".")[0])
    if config.flow == "decode-first":
        log.info("decode-first flow: decodes POST their block info to %s",
                 proxy.state.metaserver_url)
    return proxy


def run_until_signal(main: Callable[[asyncio.Event], Any]) -> None:
    """Run ``main(stop)`` on a fresh event loop (uvloop when installed); ``stop`` is set on
    SIGTERM/SIGINT."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        asyncio.run(wrapper())
    else:
        # vLLM hosts have it (uvicorn[standard] pulls it in), so a proxy installed next to
        # vLLM runs on it: tests/proxy/test_uvloop.py keeps that path working.
        uvloop.run(wrapper())


def serve(config: ProxyConfig, *, on_ready: Callable[[RunningProxy], None] | None = None,
          ) -> None:
    """Serve until SIGINT/SIGTERM (uses uvloop when it is installed). With ``workers`` > 1
    the processes of ``proxy.workers`` serve instead (``on_ready`` is not called)."""
    if config.workers > 1:
        from ascend_pd.proxy.workers import serve_workers

        serve_workers(config)
        return

    async def main(stop: asyncio.Event) -> None:
        proxy = await start_proxy(config)
        if on_ready is not None:
            on_ready(proxy)
        await stop.wait()
        log.info("ascend-pd proxy stopping")
        await proxy.stop()

    run_until_signal(main)
