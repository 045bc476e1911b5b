"""The P->D load-balancing proxy: one OpenAI endpoint in front of prefill and decode vLLMs.

Library API: ``ProxyConfig`` / ``proxy_config_from_spec(spec)``, ``create_app(config)``,
``start_proxy(config)`` (in-process, returns a RunningProxy) and ``serve(config)`` (blocking).
Stack: aiohttp's server towards clients; the proxy's own small HTTP/1.1 client
(``proxy.upstream``) for the legs to prefill and decode. Both chosen by measurement against
aiohttp's client and starlette/uvicorn + httpx (docs/proxy.md).
"""

from __future__ import annotations

from ascend_pd.proxy.app import create_app
from ascend_pd.proxy.balancer import Backend, Pool
from ascend_pd.proxy.config import BackendAddress, ProxyConfig, proxy_config_from_spec
from ascend_pd.proxy.server import RunningProxy, serve, start_proxy
from ascend_pd.proxy.state import ProxyState

__all__ = [
    "Backend",
    "BackendAddress",
    "Pool",
    "ProxyConfig",
    "ProxyState",
    "RunningProxy",
    "create_app",
    "proxy_config_from_spec",
    "serve",
    "start_proxy",
]
