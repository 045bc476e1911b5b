"""The proxy the rendered script starts is the proxy `ascend-pd proxy -c pd.yaml` serves.

Both come from the deployment plan's ProxyConfig; the script carries it as arguments
(proxy/argv.py), so these tests parse those arguments with the real CLI.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from typing import Any

import pytest
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.proxy import BackendAddress, ProxyConfig, proxy_config_from_spec
from ascend_pd.proxy.argv import FLAGS, proxy_args
from ascend_pd.proxy.discovery import DiscoveryTarget
from ascend_pd.render import build_plan

from ..render.conftest import edited


def parsed(args: list[str], **env: str) -> dict[str, Any]:
    """The configuration the real `ascend-pd proxy` command builds from ``args``."""
    out = CliRunner().invoke(cli, ["proxy", *args, "--dry-run", "--json"], env=env,
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    data: dict[str, Any] = json.loads(out.output)["data"]
    return data


def as_json(config: ProxyConfig) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(config.to_dict()))
    return data


def test_every_setting_survives_the_command_line() -> None:
    default = ProxyConfig(prefill=(BackendAddress("10.0.0.5", 8100),),
                          decode=(BackendAddress("fd00::6", 8200),))
    changed: dict[str, Any] = {}
    for f in fields(ProxyConfig):
        value = getattr(default, f.name)
        if isinstance(value, bool) or f.name in ("prefill", "decode", "discover"):
            continue
        if f.name in ("flow", "policy_prefill", "policy_decode", "kv_params"):
            changed[f.name] = {"flow": "decode-first", "policy_prefill": "round_robin",
                               "policy_decode": "power_of_two", "kv_params": "optional"}[f.name]
        elif f.name == "host":
            changed[f.name] = "10.0.0.9"
        elif f.name in ("metaserver_url",):
            changed[f.name] = "http://10.0.0.9:9000/v1/metaserver"
        elif f.name == "discover_dns":
            changed[f.name] = "10.96.0.10:53"
        elif f.name == "admin_networks":
            changed[f.name] = ("10.0.0.0/8", "fd00::/8")
        elif f.name in ("admin_token", "backend_api_key"):
            changed[f.name] = "s3cret"
        elif isinstance(value, int | float):
            changed[f.name] = value + 1
    changed["decode_read_timeout_s"] = changed["prefill_timeout_s"]
    flagless = {"restore_after", "max_body_bytes", "max_recomputes", "drain_timeout_s"}
    config = replace(default, **{k: v for k, v in changed.items() if k not in flagless},
                     discover=(DiscoveryTarget("decode", "decode-0.svc", 8200),))
    args = proxy_args(config, admin_token_env="PD_ADMIN", backend_api_key_env="PD_KEY")
    assert "s3cret" not in args  # secrets travel by env var name only
    got = parsed(args, PD_ADMIN="s3cret", PD_KEY="s3cret")
    assert got == as_json(config)
    assert set(FLAGS) and all(got[name] != getattr(default, name) for name, _ in FLAGS)
    with pytest.raises(ValueError, match="no flag for max_recomputes"):
        proxy_args(replace(default, max_recomputes=1))
    with pytest.raises(ValueError, match="admin-token set without the env var"):
        proxy_args(replace(default, admin_token="s3cret"))


def _external_dp(data: dict[str, Any]) -> None:
    data["decode"][0]["dp_mode"] = "external"
    data["proxy"].update(health_timeout_s=10.0, eject_after=6)


def _layerwise(data: dict[str, Any]) -> None:
    data["connector"].update(vllm_ascend_version="0.23.0.post1",
                             mooncake_connector="MooncakeLayerwiseConnector")


@pytest.mark.parametrize("edit", [_external_dp, _layerwise], ids=["external-dp", "layerwise"])
def test_proxy_from_the_spec_is_the_rendered_proxy(edit: Any) -> None:
    # `ascend-pd proxy -c` used to map the spec on its own: it sent an external-DP decode's
    # traffic to rank 0 only and ran a layerwise deployment prefill first.
    spec = edited("a3-2p1d", edit)
    plan = build_plan(spec)
    assert plan.proxy is not None
    from_spec = as_json(proxy_config_from_spec(spec, environ={}))
    assert parsed(plan.proxy.args) == from_spec
    assert from_spec["decode"] == plan.proxy.decode
    assert from_spec["flow"] == plan.proxy.flow


def test_external_dp_and_layerwise_reach_the_proxy_from_the_spec() -> None:
    dp = proxy_config_from_spec(edited("a3-2p1d", _external_dp), environ={})
    assert len(dp.decode) == 8 and dp.health_timeout_s == 10.0
    layerwise = proxy_config_from_spec(edited("a3-2p1d", _layerwise), environ={})
    assert layerwise.flow == "decode-first"
    assert layerwise.metaserver_url == "http://192.0.2.21:8000/v1/metaserver"
