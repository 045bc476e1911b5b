"""Run the proxy: in-process for tests (``start_proxy``) or until a signal (``serve``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ascend_pd.errors import ProxyError
from ascend_pd.proxy.app import STATE_KEY, create_app
from ascend_pd.proxy.config import ProxyConfig
from ascend_pd.proxy.state import ProxyState

log = logging.getLogger("ascend_pd.proxy")


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


async def start_proxy(config: ProxyConfig) -> RunningProxy:
    """Start listening on ``config.host:config.port``; ProxyError when the bind fails."""
    app = create_app(config)
    # handler_cancellation: a client that disconnects cancels its handler, which closes the
    # in-flight upstream leg (and so aborts the request on the backend) at once.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=4096)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ProxyError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}",
                         hint="pick another --port or stop what holds it") from exc
    port = int(runner.addresses[0][1]) if runner.addresses else config.port
    proxy = RunningProxy(runner, app[STATE_KEY], config.host, port)
    proxy.state.metaserver_url = config.metaserver_for(port)
    log.info("ascend-pd proxy listening on %s; prefill %s (%s); decode %s (%s)", proxy.url,
             ", ".join(map(str, config.prefill)), config.policy_prefill,
             ", ".join(map(str, config.decode)), config.policy_decode)
    if config.flow == "decode-first":
        log.info("decode-first flow: decodes POST their block info to %s",
                 proxy.state.metaserver_url)
    return proxy


def serve(config: ProxyConfig, *, on_ready: Callable[[RunningProxy], None] | None = None,
          ) -> None:
    """Serve until SIGINT/SIGTERM (uses uvloop when it is installed)."""

    async def main() -> None:
        proxy = await start_proxy(config)
        if on_ready is not None:
            on_ready(proxy)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("ascend-pd proxy stopping")
        await proxy.stop()

    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        asyncio.run(main())
    else:  # pragma: no cover - optional speed-up
        uvloop.run(main())
