"""Backends from DNS: every address a name resolves to is a backend, re-resolved periodically.

On Kubernetes each instance has a headless Service, whose name resolves to one A record
per *ready* API pod (docs/kubernetes.md). Resolving it every few seconds lets the proxy
follow scaling and restarts with no API permissions and no restart: new addresses are added
to the role's pool, vanished ones removed through the same :class:`Pool` add/remove path as
``/instances/add|remove`` (in-flight requests keep their backend and finish). A failed
look-up changes nothing: an empty answer from a flapping DNS server must not empty a pool.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ascend_pd.errors import UsageError
from ascend_pd.proxy.balancer import Pool
from ascend_pd.proxy.config import BackendAddress, ProxyConfig

log = logging.getLogger("ascend_pd.proxy")

#: ``name -> addresses``; raises OSError (or times out) when the name cannot be resolved
Resolver = Callable[[str], Awaitable[set[str]]]


@dataclass(frozen=True)
class DiscoveryTarget:
    """``--discover-prefill NAME:PORT``: every address of NAME, on PORT, is a backend."""

    role: str
    name: str
    port: int

    @classmethod
    def parse(cls, role: str, text: str) -> DiscoveryTarget:
        name, sep, port = text.rpartition(":")
        if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--discover-{role} {text!r} is not NAME:PORT",
                             hint=f"e.g. --discover-{role} prefill-0.ascend-pd.svc:8100")
        return cls(role, name, int(port))

    def __str__(self) -> str:
        return f"{self.name}:{self.port}"


async def system_resolver(name: str) -> set[str]:
    """The host's resolver (``/etc/resolv.conf`` search domains, as in a pod)."""
    infos = await asyncio.get_running_loop().getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return {str(info[4][0]) for info in infos}


def dns_resolver(server: str, port: int = 53, timeout_s: float = 2.0) -> Resolver:
    """Ask one DNS server directly (A and AAAA records), e.g. a cluster DNS or a test's."""
    from dnslib import QTYPE, DNSRecord  # type: ignore[import-untyped]  # only this resolver

    def ask(name: str) -> set[str]:
        found: set[str] = set()
        for qtype in ("A", "AAAA"):
            reply = DNSRecord.parse(DNSRecord.question(name, qtype).send(
                server, port, timeout=timeout_s))
            found.update(str(rr.rdata) for rr in reply.rr
                         if rr.rtype in (QTYPE.A, QTYPE.AAAA))
        return found

    async def resolve(name: str) -> set[str]:
        return await asyncio.to_thread(ask, name)

    return resolve


class Discovery:
    """Keeps the pools in step with what the targets' names resolve to.

    Only backends it added are ever removed by it: static ``--prefill``/``--decode``
    backends and ``/instances/add`` ones are left alone.
    """

    def __init__(self, targets: tuple[DiscoveryTarget, ...], pools: dict[str, Pool], *,
                 interval_s: float, resolver: Resolver = system_resolver,
                 timeout_s: float = 5.0) -> None:
        self.targets = targets
        self.pools = pools
        self.interval_s = interval_s
        self.resolver = resolver
        self.timeout_s = timeout_s
        self.owned: dict[DiscoveryTarget, set[BackendAddress]] = {t: set() for t in targets}

    async def refresh(self, target: DiscoveryTarget) -> None:
        try:
            addresses = await asyncio.wait_for(self.resolver(target.name), self.timeout_s)
        except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
            log.warning("discovery: %s did not resolve (%s); keeping %d backend(s)",
                        target.name, exc or type(exc).__name__, len(self.owned[target]))
            return
        pool = self.pools[target.role]
        now = {BackendAddress(a, target.port) for a in addresses}
        for address in sorted(now - self.owned[target], key=str):
            pool.add(address)
            log.warning("discovery: %s backend %s added (%s)", target.role, address, target)
        for address in sorted(self.owned[target] - now, key=str):
            # Another target may still list it (two names, one pod): keep it then.
            if not any(address in owned for t, owned in self.owned.items() if t != target
                       and t.role == target.role):
                pool.remove(address)
            log.warning("discovery: %s backend %s removed (%s)", target.role, address, target)
        self.owned[target] = now

    async def refresh_all(self) -> None:
        await asyncio.gather(*(self.refresh(t) for t in self.targets))

    async def run(self) -> None:
        """Re-resolve forever (cancel to stop); the first round is :meth:`refresh_all`."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.refresh_all()


def make_discovery(config: ProxyConfig, pools: dict[str, Pool]) -> Discovery:
    """The discovery of a proxy configuration (system resolver unless ``discover_dns``)."""
    resolver: Resolver = system_resolver
    if config.discover_dns:
        host, _, port = config.discover_dns.rpartition(":")
        resolver = dns_resolver(host.strip("[]"), int(port))
    return Discovery(config.discover, pools, interval_s=config.discover_interval_s,
                     resolver=resolver)
