"""Proxy settings: backend addresses, policies, timeouts, health and security knobs.

``proxy_config_from_spec(spec)`` takes them from the deployment plan of ``pd.yaml``
(``render.plan``): every API server the plan starts (DP heads; ``--headless`` hosts have no
HTTP server), the flow its connector needs, and the spec's ``proxy:`` settings.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from ascend_pd.errors import ProxyConfigError, ProxyError
from ascend_pd.spec.models import ClusterSpec

if TYPE_CHECKING:
    from ascend_pd.proxy.discovery import DiscoveryTarget

Policy = Literal["least_loaded", "round_robin", "power_of_two", "cache_aware"]
POLICIES: tuple[Policy, ...] = ("least_loaded", "round_robin", "power_of_two", "cache_aware")
Flow = Literal["prefill-first", "decode-first"]
FLOWS: tuple[Flow, ...] = ("prefill-first", "decode-first")
WILDCARDS = ("", "0.0.0.0", "::", "[::]")
#: what the proxy demands of a prefill answer (``--kv-params``)
KV_PARAMS: tuple[str, ...] = ("required", "optional")


@dataclass(frozen=True, order=True)
class BackendAddress:
    """One vLLM API server: ``host`` is a name, IPv4 or bare IPv6 address."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> BackendAddress:
        """Parse ``HOST:PORT`` or ``[IPV6]:PORT``; ProxyConfigError naming the bad value."""
        value = text.strip()
        if value.startswith("http://"):
            value = value[len("http://"):].rstrip("/")
        if value.startswith("["):
            host, sep, port = value[1:].partition("]:")
        else:
            host, sep, port = value.rpartition(":")
            if ":" in host:  # a bare IPv6 address would make the port ambiguous
                sep = ""
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ProxyConfigError(f"backend address {text!r} is not HOST:PORT",
                             hint="write e.g. 10.0.0.5:8100, or [fd00::5]:8100 for IPv6")
        return cls(host, int(port))

    @property
    def is_ipv6(self) -> bool:
        try:
            return isinstance(ipaddress.ip_address(self.host), ipaddress.IPv6Address)
        except ValueError:
            return False

    # Cached: the relay names the backend in metric labels several times per request, and
    # parsing the host with ipaddress each time showed up in the c=1 latency profile.
    @cached_property
    def _text(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return self._text

    @cached_property
    def url(self) -> str:
        """Base URL with the IPv6 host bracketed (vllm-ascend#4161, #4164)."""
        return f"http://{self}"


@dataclass(frozen=True)
class ProxyConfig:
    """Everything ``serve(config)`` needs. Timeouts are seconds.

    Attributes:
        prefill, decode: backend addresses per role (at least one each).
        host, port: where the proxy listens.
        policy_prefill, policy_decode: ``least_loaded`` (outstanding prompt tokens for
            prefill, outstanding requests for decode), ``round_robin``, ``power_of_two``, or
            for prefill ``cache_aware`` (prefix affinity bounded by load, ``proxy.affinity``;
            the prefill default).
        admin_token: required as ``Authorization: Bearer`` on /instances/* when set. Without
            one the admin endpoints answer only when the proxy listens on loopback only.
        admin_networks: when set, ``/instances/add`` accepts only backends whose address
            lies in one of these networks (CIDR, e.g. ``10.0.0.0/8``).
        backend_api_key: sent to backends instead of the client's Authorization.
        connect_timeout_s: per-leg TCP connect timeout.
        prefill_timeout_s: the whole prefill answer must arrive within this.
        decode_read_timeout_s: the longest silence allowed between decode bytes.
        max_retries: extra attempts per leg on another backend (never for 4xx, never after
            the first byte reached the client).
        health_interval_s, health_timeout_s: active ``GET /health`` probing.
        eject_after, restore_after: consecutive failed / successful probes to eject / restore.
        max_body_bytes: larger request bodies get 413.
        max_recomputes: rounds of re-prefill for ``stop_reason: "recomputed"``.
        drain_on_disconnect: after an abandoned request, send a 1-token decode leg so the
            prefill frees the KV blocks now instead of at its abort timeout.
        flow: ``prefill-first`` (P then D with P's kv_transfer_params: MooncakeConnectorV1,
            NIXL) or ``decode-first`` (D first; D POSTs its block info to the proxy's
            ``/v1/metaserver``, which then runs P: MooncakeLayerwiseConnector).
        metaserver_url: decode-first only: the URL the decode instances POST to. Required
            when ``host`` is a wildcard; else ``http://<host>:<bound port>/v1/metaserver``.
        kv_params: ``required`` (a prefill answer without kv_transfer_params is a 502: NIXL,
            Mooncake) or ``optional`` (the storage connector: the decode leg then carries
            none, and nothing is drained).
        max_in_flight: requests one backend is sent at once (0: no limit; drains excepted).
        queue_size: requests that may wait for a backend slot, over all roles; beyond: 429.
        queue_timeout_s: the longest wait for a slot; then 503 (both with Retry-After).
        breaker_failures, breaker_open_s: consecutive failed legs (network error or 5xx) that
            open a backend's circuit breaker, and how long it stays open before one probe.
        max_connections: open client connections per process (idle ones are evicted first).
        header_timeout_s: a request head must arrive whole within this once it started.
        body_timeout_s: a request body must arrive whole within this (408).
        idle_timeout_s: a client connection with no request in progress is closed after this.
        max_json_depth: request bodies nesting JSON deeper get 400 (``inbound.parse_body``).
        workers: processes serving the same port (SO_REUSEPORT), each with its own pools,
            limits and health checks (``proxy.server``).
    """

    prefill: tuple[BackendAddress, ...]
    decode: tuple[BackendAddress, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    # cache_aware measured 0.56x least_loaded's TTFT p50 on shared prefixes (docs/proxy.md)
    # and is least loaded when nothing repeats.
    policy_prefill: Policy = "cache_aware"
    policy_decode: Policy = "least_loaded"
    admin_token: str | None = None
    backend_api_key: str | None = None
    connect_timeout_s: float = 5.0
    prefill_timeout_s: float = 600.0
    decode_read_timeout_s: float = 600.0
    max_retries: int = 2
    health_interval_s: float = 2.0
    health_timeout_s: float = 2.0
    eject_after: int = 3
    restore_after: int = 2
    max_body_bytes: int = 32 * 1024 * 1024
    max_recomputes: int = 8
    drain_on_disconnect: bool = True
    drain_timeout_s: float = 60.0
    flow: Flow = "prefill-first"
    metaserver_url: str | None = None
    kv_params: str = "required"
    # admission, connection hygiene, admin surface, processes (docs/proxy.md, security.md)
    admin_networks: tuple[str, ...] = ()
    max_in_flight: int = 512
    queue_size: int = 2048
    queue_timeout_s: float = 30.0
    breaker_failures: int = 5
    breaker_open_s: float = 10.0
    max_connections: int = 4096
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0
    max_json_depth: int = 64
    workers: int = 1

    #: backends from DNS names, re-resolved every ``discover_interval_s`` (proxy/discovery.py)
    discover: tuple[DiscoveryTarget, ...] = ()
    discover_interval_s: float = 5.0
    #: ``HOST:PORT`` of a DNS server to ask instead of the system resolver
    discover_dns: str | None = None

    def __post_init__(self) -> None:
        found = {t.role for t in self.discover}
        if (not self.prefill and "prefill" not in found) or (
                not self.decode and "decode" not in found):
            raise ProxyConfigError("the proxy needs at least one prefill and one decode backend",
                             hint="pass --prefill HOST:PORT and --decode HOST:PORT, or -c pd.yaml")
        if self.flow not in FLOWS:
            raise ProxyConfigError(f"unknown proxy flow {self.flow!r}",
                             hint="use one of: " + ", ".join(FLOWS))
        if self.flow == "decode-first" and not self.metaserver_url \
                and self.host in WILDCARDS:
            raise ProxyConfigError(
                f"the decode-first flow needs a metaserver URL the decode instances can "
                f"reach; the proxy listens on the wildcard address {self.host!r}",
                hint="pass --metaserver-url http://ADDR:PORT/v1/metaserver (ADDR: this "
                     "host's address on the decodes' network), or --host ADDR")
        if self.kv_params not in KV_PARAMS:
            raise ProxyConfigError(f"unknown --kv-params {self.kv_params!r}",
                                   hint="use one of: " + ", ".join(KV_PARAMS))
        if self.metaserver_url is not None and not self.metaserver_url.startswith("http://"):
            raise ProxyConfigError(f"metaserver URL {self.metaserver_url!r} is not http://...",
                             hint="write e.g. http://10.0.0.9:8000/v1/metaserver")
        for policy in (self.policy_prefill, self.policy_decode):
            if policy not in POLICIES:
                raise ProxyConfigError(f"unknown policy {policy!r}",
                                 hint="use one of: " + ", ".join(POLICIES))
        if self.policy_decode == "cache_aware":
            # Decode reuses the KV it pulls, not a prefix cache: load is what matters there.
            raise ProxyConfigError("cache_aware is a prefill policy",
                             hint="use least_loaded (or round_robin) for --policy-decode")
        for name in ("max_in_flight", "queue_size"):
            if getattr(self, name) < 0:
                raise ProxyConfigError(f"{name} must be 0 or more", hint="0 means no limit")
        for name in ("queue_timeout_s", "breaker_open_s", "header_timeout_s",
                     "body_timeout_s", "idle_timeout_s"):
            if getattr(self, name) <= 0:
                raise ProxyConfigError(f"{name} must be more than 0 seconds")
        for name in ("breaker_failures", "max_connections", "max_json_depth", "workers"):
            if getattr(self, name) < 1:
                raise ProxyConfigError(f"{name} must be at least 1")
        for net in self.admin_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ProxyConfigError(f"admin network {net!r} is not a network",
                                 hint="write CIDR, e.g. 10.0.0.0/8 or fd00::/8") from None

    def metaserver_for(self, port: int) -> str:
        """The metaserver URL once the proxy listens on ``port`` (the bound one for 0)."""
        if self.metaserver_url:
            return self.metaserver_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/v1/metaserver"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prefill"] = [str(a) for a in self.prefill]
        data["decode"] = [str(a) for a in self.decode]
        data["discover"] = [f"{t.role}={t}" for t in self.discover]
        # Secrets never leave the process in reports.
        data["admin_token"] = "***" if self.admin_token else None
        data["backend_api_key"] = "***" if self.backend_api_key else None
        return data


def secret_from_env(var: str | None, what: str,
                    environ: Mapping[str, str] | None = None) -> str | None:
    """Read a secret from the named env var; ProxyError when it is named but unset/empty."""
    if not var:
        return None
    value = (os.environ if environ is None else environ).get(var, "")
    if not value:
        raise ProxyError(f"{what} env var {var} is not set",
                         hint=f"export {var}=... before starting the proxy, or drop the option")
    return value


def proxy_config_from_spec(spec: ClusterSpec, *, environ: Mapping[str, str] | None = None,
                           **overrides: Any) -> ProxyConfig:
    """The proxy the deployment plan of ``spec`` configures (the one the rendered launch
    script starts), with the admin token read from ``proxy.admin_token_env``.

    Args:
        spec: a loaded ClusterSpec; it must have a ``proxy:`` section.
        environ: where ``proxy.admin_token_env`` is looked up (default ``os.environ``).
        **overrides: any ProxyConfig field (e.g. ``port`` from the command line).
    """
    if spec.proxy is None:
        raise ProxyError("the spec has no proxy: section",
                         hint="add `proxy: {host: <address>, port: 8000}` to pd.yaml")
    from ascend_pd.render.plan import build_plan  # the plan builds its config with this module

    plan = build_plan(spec)
    if plan.release_error is not None:
        raise plan.release_error
    assert plan.proxy is not None
    assert plan.proxy.config is not None
    values: dict[str, Any] = {
        "admin_token": secret_from_env(spec.proxy.admin_token_env, "admin token", environ),
        **{k: v for k, v in overrides.items() if v is not None}}
    return replace(plan.proxy.config, **values)
