"""The admin surface: ``POST /instances/add`` and ``/instances/remove``, closed by default.

An admin endpoint that anyone on the network can call lets them add a rogue backend, which
then receives users' prompts and the backend API key and can inject answers. So:

* **Who may call**: with an admin token configured, only ``Authorization: Bearer <token>``
  (compared in constant time). Without one, the endpoints answer only when the proxy
  listens on loopback alone (then only local users reach it); on any other bind they are
  disabled (403 with the fix).
* **What may be added** (``validate``): an address that resolves; inside ``admin_networks``
  when that allow-list is set; not the proxy itself (an address of this host -- one a
  socket can bind -- on a port the proxy listens on: one request would loop into itself);
  answering ``GET /health`` 200 like a vLLM, and not with the proxy's own health document
  (no proxy chains). The probe carries no ``Authorization``: the backend API key is only
  sent to backends that were configured or passed these checks.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import socket
from typing import Any

from aiohttp import web

from ascend_pd.errors import UsageError
from ascend_pd.proxy import inbound
from ascend_pd.proxy.balancer import Pool
from ascend_pd.proxy.config import BackendAddress
from ascend_pd.proxy.state import ProxyState
from ascend_pd.proxy.trace import JSON_TYPE
from ascend_pd.proxy.upstream import UpstreamError

log = logging.getLogger("ascend_pd.proxy")

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def _fail(exc: type[web.HTTPException], message: str, err_type: str) -> web.HTTPException:
    return exc(text=json.dumps({"error": {"message": message, "type": err_type, "param": None,
                                          "code": exc.status_code}}), content_type=JSON_TYPE)


def is_loopback_host(host: str) -> bool:
    """Is a listen address loopback-only? (``0.0.0.0``, ``::`` and names are not.)"""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_local_address(ip: str) -> bool:
    """Is ``ip`` an address of this host? Only a local address can be bound."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((ip, 0))
    except OSError:
        return False
    return True


class Admin:
    """The /instances/* handlers over a ProxyState."""

    def __init__(self, state: ProxyState) -> None:
        self.state = state

    def _check_caller(self, request: web.Request) -> None:
        cfg = self.state.config
        if cfg.admin_token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode("utf-8", "replace"),
                                       f"Bearer {cfg.admin_token}".encode()):
                raise _fail(web.HTTPUnauthorized, "admin token missing or wrong",
                            "AuthenticationError")
        elif not is_loopback_host(cfg.host):
            raise _fail(web.HTTPForbidden, (
                f"admin endpoints are disabled: the proxy listens on {cfg.host} and has no "
                "admin token; start it with --admin-token-env VAR (spec: "
                "proxy.admin_token_env), or bind it to 127.0.0.1"), "PermissionError")

    async def _body(self, request: web.Request) -> tuple[Pool, list[BackendAddress]]:
        self._check_caller(request)
        try:
            body = inbound.parse_body(await request.read(), self.state.config.max_json_depth)
            pool = self.state.pools[body["type"]]
            addresses = [BackendAddress.parse(str(a)) for a in body["instances"]]
        except (inbound.BadRequest, ValueError, KeyError, TypeError, UsageError) as exc:
            raise _fail(web.HTTPBadRequest, "expected {\"type\": \"prefill\"|\"decode\", "
                        f"\"instances\": [\"host:port\"]}}: {exc}", "BadRequestError") from None
        return pool, addresses

    async def validate(self, address: BackendAddress) -> tuple[int, str] | None:
        """Why ``address`` may not be added, with the status that says so (403: not allowed,
        502: does not answer like a vLLM); None when it may."""
        cfg = self.state.config
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                address.host, address.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            return 502, f"does not resolve: {exc}"
        ips = sorted({str(info[4][0]) for info in infos})
        if cfg.admin_networks:
            nets = [ipaddress.ip_network(n, strict=False) for n in cfg.admin_networks]
            outside = [ip for ip in ips if not any(ipaddress.ip_address(ip) in n for n in nets)]
            if outside:
                return 403, (f"{', '.join(outside)} is outside the allowed networks "
                             f"{', '.join(cfg.admin_networks)}")
        ports = self.state.listening_ports()
        if address.port in ports and any(is_local_address(ip) for ip in ips):
            return 403, "is this proxy itself"
        return await self._answers_like_vllm(address)

    async def _answers_like_vllm(self, address: BackendAddress) -> tuple[int, str] | None:
        try:
            async with await self.state.upstream.get(address, "/health",
                                                     self.state.config.health_timeout_s
                                                     ) as resp:
                data = await resp.read()
                status = resp.status
        except UpstreamError as exc:
            return 502, f"unreachable: {exc}"
        if status != 200:
            return 502, f"GET /health answered {status}"
        try:
            doc: Any = json.loads(data) if data.strip() else None
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "backends" in doc:
            return 403, "answers /health like an ascend-pd proxy, not a vLLM server"
        return None

    async def add(self, request: web.Request) -> web.Response:
        pool, addresses = await self._body(request)
        added: list[str] = []
        refused: dict[str, str] = {}
        statuses = set()
        for address in addresses:
            problem = await self.validate(address)
            if problem is not None:
                statuses.add(problem[0])
                refused[str(address)] = problem[1]
                log.warning("refused to add %s backend %s: %s", pool.role, address, problem[1])
                continue
            pool.add(address)
            added.append(str(address))
            log.warning("%s backend %s added", pool.role, address)
        status = 200 if added or not refused else max(statuses)
        return web.Response(status=status, content_type=JSON_TYPE, text=json.dumps({
            "added": added, "refused": refused,
            "backends": [str(b.address) for b in pool.backends]}))

    async def remove(self, request: web.Request) -> web.Response:
        pool, addresses = await self._body(request)
        removed = []
        for address in addresses:
            backend = pool.remove(address)
            if backend is not None:
                self.state.admission.forget(backend)
                removed.append(str(address))
                log.warning("%s backend %s removed", pool.role, address)
        return web.Response(content_type=JSON_TYPE, text=json.dumps({
            "removed": removed, "backends": [str(b.address) for b in pool.backends]}))
