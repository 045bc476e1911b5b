"""`ascend-pd proxy`: run the P->D load-balancing proxy in the foreground."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, common, pass_session, spec_option
from ascend_pd.errors import UsageError
from ascend_pd.proxy import BackendAddress, ProxyConfig, proxy_config_from_spec, serve
from ascend_pd.proxy.config import FLOWS, KV_PARAMS, POLICIES, secret_from_env
from ascend_pd.proxy.discovery import DiscoveryTarget

_policy = click.Choice(list(POLICIES))
#: option name -> ProxyConfig field, for the admission / hygiene / admin / worker options
_EDGE = {"max_in_flight": "max_in_flight", "queue_size": "queue_size",
         "queue_timeout": "queue_timeout_s", "breaker_failures": "breaker_failures",
         "breaker_open": "breaker_open_s", "max_connections": "max_connections",
         "header_timeout": "header_timeout_s", "body_timeout": "body_timeout_s",
         "idle_timeout": "idle_timeout_s", "max_json_depth": "max_json_depth",
         "admin_network": "admin_networks", "workers": "workers"}


def _edge_options(f: Any) -> Any:
    """Admission control, connection hygiene, admin allow-list and workers (docs/proxy.md)."""
    options = [
        click.option("--max-in-flight", type=int, default=None,
                     help="Requests one backend is sent at once (0: no limit; default 512)."),
        click.option("--queue-size", type=int, default=None,
                     help="Requests that may wait for a slot (default 2048); beyond: 429."),
        click.option("--queue-timeout", type=float, default=None,
                     help="Seconds a request may wait for a slot (default 30); then 503."),
        click.option("--breaker-failures", type=int, default=None,
                     help="Consecutive failed legs that open a backend's breaker (5)."),
        click.option("--breaker-open", type=float, default=None,
                     help="Seconds a breaker stays open before one probe (10)."),
        click.option("--max-connections", type=int, default=None,
                     help="Open client connections per worker (default 4096)."),
        click.option("--header-timeout", type=float, default=None,
                     help="Seconds for a whole request head (default 10)."),
        click.option("--body-timeout", type=float, default=None,
                     help="Seconds for a whole request body (default 30)."),
        click.option("--idle-timeout", type=float, default=None,
                     help="Seconds an idle client connection stays open (default 60)."),
        click.option("--max-json-depth", type=int, default=None,
                     help="Deepest JSON nesting accepted in a body (default 64)."),
        click.option("--admin-network", multiple=True, metavar="CIDR",
                     help="Only backends in these networks may be added (repeat)."),
        click.option("--workers", type=int, default=None,
                     help="Processes serving the port (SO_REUSEPORT; default 1)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _edge_overrides(edge: dict[str, Any]) -> dict[str, Any]:
    values = {_EDGE[k]: v for k, v in edge.items() if k in _EDGE}
    values["admin_networks"] = tuple(values.get("admin_networks") or ()) or None
    return values


@click.command("proxy")
@spec_option
@click.option("--prefill", "prefill", multiple=True, metavar="HOST:PORT",
              help="A prefill vLLM API server (repeat). Default: the spec's prefill heads.")
@click.option("--decode", "decode", multiple=True, metavar="HOST:PORT",
              help="A decode vLLM API server (repeat). Default: the spec's decode heads.")
@click.option("--host", default=None, help="Listen address (default 127.0.0.1; spec: bind).")
@click.option("--port", type=int, default=None, help="Listen port (default 8000).")
@click.option("--policy-prefill", type=_policy, default=None)
@click.option("--policy-decode", type=_policy, default=None)
@click.option("--admin-token-env", metavar="VAR", default=None,
              help="Env var holding the bearer token for /instances/add|remove.")
@click.option("--backend-api-key-env", metavar="VAR", default=None,
              help="Env var holding the API key sent to backends (else the client's).")
@click.option("--max-retries", type=int, default=None)
@click.option("--connect-timeout", type=float, default=None, help="Seconds, per leg.")
@click.option("--read-timeout", type=float, default=None,
              help="Seconds: prefill answer / longest decode silence.")
@click.option("--health-interval", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds between /health probes (default 2).")
@click.option("--health-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a /health probe may take (default 2).")
@click.option("--eject-after", type=click.IntRange(min=1), default=None,
              help="Consecutive failed probes that eject a backend (default 3).")
@click.option("--flow", type=click.Choice(list(FLOWS)), default=None,
              help="prefill-first (default; MooncakeConnectorV1, NIXL) or decode-first "
                   "(MooncakeLayerwiseConnector: D first, then P via /v1/metaserver).")
@click.option("--kv-params", type=click.Choice(list(KV_PARAMS)), default=None,
              help="required (default: a prefill answer without kv_transfer_params is a "
                   "502) or optional (storage connector: D reads the KV from shared storage).")
@click.option("--metaserver-url", metavar="URL", default=None,
              help="decode-first: the URL the decodes POST to (required with a wildcard "
                   "--host; default http://HOST:PORT/v1/metaserver).")
@click.option("--discover-prefill", multiple=True, metavar="NAME:PORT",
              help="Every address NAME resolves to is a prefill backend (re-resolved).")
@click.option("--discover-decode", multiple=True, metavar="NAME:PORT",
              help="Every address NAME resolves to is a decode backend (re-resolved).")
@click.option("--discover-interval", type=click.FloatRange(0.1), default=5.0,
              show_default=True, help="Seconds between DNS look-ups.")
@click.option("--discover-dns", metavar="HOST:PORT", default=None,
              help="Ask this DNS server instead of the system resolver.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@_edge_options
@common
@pass_session
def command(session: Session, /, prefill: tuple[str, ...], decode: tuple[str, ...],
            host: str | None, port: int | None, policy_prefill: str | None,
            policy_decode: str | None, admin_token_env: str | None,
            backend_api_key_env: str | None, max_retries: int | None,
            connect_timeout: float | None, read_timeout: float | None,
            health_interval: float | None, health_timeout: float | None,
            eject_after: int | None, flow: str | None, kv_params: str | None,
            metaserver_url: str | None,
            discover_prefill: tuple[str, ...], discover_decode: tuple[str, ...],
            discover_interval: float, discover_dns: str | None,
            dry_run: bool, **edge: Any) -> None:
    """Serve one OpenAI endpoint that runs every request as prefill then decode.

    Backends come from --prefill/--decode or from the spec (-c pd.yaml: the proxy its
    deployment plan configures, as the rendered script starts it). Logs one JSON access
    line per request on stderr.
    """
    overrides: dict[str, Any] = {
        "host": host, "port": port, "policy_prefill": policy_prefill,
        "policy_decode": policy_decode, "max_retries": max_retries,
        "connect_timeout_s": connect_timeout, "prefill_timeout_s": read_timeout,
        "decode_read_timeout_s": read_timeout, "health_interval_s": health_interval,
        "health_timeout_s": health_timeout, "eject_after": eject_after,
        "backend_api_key": secret_from_env(backend_api_key_env, "backend API key"),
        **_edge_overrides(edge),
        "flow": flow, "metaserver_url": metaserver_url, "kv_params": kv_params,
    }
    if admin_token_env:
        overrides["admin_token"] = secret_from_env(admin_token_env, "admin token")
    discover = tuple([DiscoveryTarget.parse("prefill", t) for t in discover_prefill]
                     + [DiscoveryTarget.parse("decode", t) for t in discover_decode])
    if discover:
        overrides.update(discover=discover, discover_interval_s=discover_interval,
                         discover_dns=discover_dns)
    if prefill or decode or discover:
        if not ((prefill or discover_prefill) and (decode or discover_decode)):
            raise UsageError("give both --prefill and --decode (or neither, with -c pd.yaml)",
                             hint="--discover-prefill/--discover-decode NAME:PORT count too")
        values = {k: v for k, v in overrides.items() if v is not None}
        config = ProxyConfig(prefill=tuple(BackendAddress.parse(p) for p in prefill),
                             decode=tuple(BackendAddress.parse(d) for d in decode), **values)
    elif session.spec_path is not None:
        config = proxy_config_from_spec(session.spec(), **overrides)
    else:
        raise UsageError("no backends", hint="pass --prefill/--decode HOST:PORT or -c pd.yaml")
    if dry_run:
        data = config.to_dict()
        human = "\n".join(f"{k}: {v}" for k, v in data.items())
        finish(session.json, "proxy", data, human, 0)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    proxy_log = logging.getLogger("ascend_pd.proxy")
    proxy_log.addHandler(handler)
    proxy_log.setLevel(logging.INFO)
    proxy_log.propagate = False
    serve(config)
    finish(session.json, "proxy", {"stopped": True}, None, 0)
