"""Proxy settings: backend addresses, policies, timeouts, health and security knobs.

``proxy_config_from_spec(spec)`` derives them from ``pd.yaml``: every prefill and decode
instance is reached at its *head* host (the DP head serves the API; ``--headless`` hosts have
no HTTP server, reference §8.5 #1) on the instance's ``port``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from ascend_pd.errors import ProxyError, UsageError
from ascend_pd.spec.models import ClusterSpec

if TYPE_CHECKING:
    from ascend_pd.proxy.discovery import DiscoveryTarget

Policy = Literal["least_loaded", "round_robin", "power_of_two"]
POLICIES: tuple[Policy, ...] = ("least_loaded", "round_robin", "power_of_two")


@dataclass(frozen=True, order=True)
class BackendAddress:
    """One vLLM API server: ``host`` is a name, IPv4 or bare IPv6 address."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> BackendAddress:
        """Parse ``HOST:PORT`` or ``[IPV6]:PORT``; UsageError naming the bad value."""
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
            raise UsageError(f"backend address {text!r} is not HOST:PORT",
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
        """Base URL with the IPv6 host bracketed (reference §8.5 #14)."""
        return f"http://{self}"


@dataclass(frozen=True)
class ProxyConfig:
    """Everything ``serve(config)`` needs. Timeouts are seconds.

    Attributes:
        prefill, decode: backend addresses per role (at least one each).
        host, port: where the proxy listens.
        policy_prefill, policy_decode: ``least_loaded`` (outstanding prompt tokens for
            prefill, outstanding requests for decode), ``round_robin`` or ``power_of_two``.
        admin_token: required as ``Authorization: Bearer`` on /instances/* when set.
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
    """

    prefill: tuple[BackendAddress, ...]
    decode: tuple[BackendAddress, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    policy_prefill: Policy = "least_loaded"
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
    #: backends from DNS names, re-resolved every ``discover_interval_s`` (proxy/discovery.py)
    discover: tuple[DiscoveryTarget, ...] = ()
    discover_interval_s: float = 5.0
    #: ``HOST:PORT`` of a DNS server to ask instead of the system resolver
    discover_dns: str | None = None

    def __post_init__(self) -> None:
        found = {t.role for t in self.discover}
        if (not self.prefill and "prefill" not in found) or (
                not self.decode and "decode" not in found):
            raise UsageError("the proxy needs at least one prefill and one decode backend",
                             hint="pass --prefill HOST:PORT and --decode HOST:PORT, or -c pd.yaml")
        for policy in (self.policy_prefill, self.policy_decode):
            if policy not in POLICIES:
                raise UsageError(f"unknown policy {policy!r}",
                                 hint="use one of: " + ", ".join(POLICIES))

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
    """The proxy of a cluster spec: ``spec.proxy`` plus the instances' head host and port.

    Args:
        spec: a loaded ClusterSpec; it must have a ``proxy:`` section.
        environ: where ``proxy.admin_token_env`` is looked up (default ``os.environ``).
        **overrides: any ProxyConfig field (e.g. ``port`` from the command line).
    """
    if spec.proxy is None:
        raise ProxyError("the spec has no proxy: section",
                         hint="add `proxy: {host: <address>, port: 8000}` to pd.yaml")

    def head(instance: Any) -> BackendAddress:
        return BackendAddress(spec.host(instance.head).address, instance.port)

    values: dict[str, Any] = {
        "prefill": tuple(head(i) for i in spec.prefill),
        "decode": tuple(head(i) for i in spec.decode),
        "host": spec.proxy.bind,
        "port": spec.proxy.port,
        "policy_prefill": spec.proxy.policy_prefill,
        "policy_decode": spec.proxy.policy_decode,
        "admin_token": secret_from_env(spec.proxy.admin_token_env, "admin token", environ),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ProxyConfig(**values)
