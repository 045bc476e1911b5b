"""The ``ascend-pd proxy`` arguments that rebuild a :class:`ProxyConfig`.

The deployment plan configures the proxy once (``render.plan``); the launch script and the
Kubernetes Deployment start it with these arguments, and ``ascend-pd proxy -c pd.yaml`` uses
the plan's config directly, so the two cannot disagree. ``tests/proxy/test_argv.py`` runs the
arguments through the real CLI and compares the configs, which keeps the flag names here in
step with ``cli/proxy_cmd.py``.
"""

from __future__ import annotations

from dataclasses import fields

from ascend_pd.proxy.config import ProxyConfig

#: ProxyConfig field -> the flag that sets it alone; printed in this order when the value is
#: not the default (host, port, backends and policies always come first)
FLAGS: tuple[tuple[str, str], ...] = (
    ("health_interval_s", "--health-interval"), ("health_timeout_s", "--health-timeout"),
    ("eject_after", "--eject-after"), ("flow", "--flow"),
    ("metaserver_url", "--metaserver-url"), ("kv_params", "--kv-params"),
    ("max_retries", "--max-retries"), ("connect_timeout_s", "--connect-timeout"),
    ("max_in_flight", "--max-in-flight"), ("queue_size", "--queue-size"),
    ("queue_timeout_s", "--queue-timeout"), ("breaker_failures", "--breaker-failures"),
    ("breaker_open_s", "--breaker-open"), ("max_connections", "--max-connections"),
    ("header_timeout_s", "--header-timeout"), ("body_timeout_s", "--body-timeout"),
    ("idle_timeout_s", "--idle-timeout"), ("max_json_depth", "--max-json-depth"),
    ("workers", "--workers"), ("discover_interval_s", "--discover-interval"),
    ("discover_dns", "--discover-dns"),
)
#: written by hand below (several flags, a shared flag, or secrets by env var name)
_SPECIAL = {"prefill", "decode", "host", "port", "policy_prefill", "policy_decode",
            "admin_token", "backend_api_key", "prefill_timeout_s", "decode_read_timeout_s",
            "admin_networks", "discover"}


def proxy_args(config: ProxyConfig, *, admin_token_env: str | None = None,
               backend_api_key_env: str | None = None) -> list[str]:
    """Arguments after ``ascend-pd proxy`` that give ``config``.

    Secrets never go on a command line: a config holding one needs the name of the env var
    that carries it. ValueError for a setting the command line cannot express.
    """
    default = {f.name: f.default for f in fields(ProxyConfig)}
    args = ["--host", config.host, "--port", str(config.port)]
    for role in ("prefill", "decode"):
        for address in getattr(config, role):
            args += [f"--{role}", str(address)]
    args += ["--policy-prefill", config.policy_prefill, "--policy-decode", config.policy_decode]
    for secret, var, flag in ((config.admin_token, admin_token_env, "--admin-token-env"),
                              (config.backend_api_key, backend_api_key_env,
                               "--backend-api-key-env")):
        if secret is not None and not var:
            raise ValueError(f"{flag[2:-4]} set without the env var that carries it")
        if var:
            args += [flag, var]
    if (config.prefill_timeout_s, config.decode_read_timeout_s) != (
            default["prefill_timeout_s"], default["decode_read_timeout_s"]):
        if config.prefill_timeout_s != config.decode_read_timeout_s:
            raise ValueError("--read-timeout sets prefill and decode timeouts together")
        args += ["--read-timeout", str(config.prefill_timeout_s)]
    for network in config.admin_networks:
        args += ["--admin-network", network]
    for target in config.discover:
        args += [f"--discover-{target.role}", str(target)]
    flagged = {name for name, _ in FLAGS}
    for name, flag in FLAGS:
        value = getattr(config, name)
        if value != default[name]:
            args += [flag, str(value)]
    for name in default.keys() - flagged - _SPECIAL:
        if getattr(config, name) != default[name]:
            raise ValueError(f"the proxy command line has no flag for {name}")
    return args
