"""The decode-first (layerwise) flow end to end against simulated layerwise P and D: the
decode posts its block info to the proxy's /v1/metaserver, the proxy runs the prefill with
it, the prefill pushes the KV into the decode's blocks."""

from __future__ import annotations

import json

import httpx
import pytest

from ascend_pd.errors import UsageError
from ascend_pd.proxy import BackendAddress, ProxyConfig
from tests.proxy.conftest import MODEL, sim_state, wait_for

BODY = {"model": MODEL, "prompt": "why is the link down", "max_tokens": 6}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 4}


def _metric(proxy, name: str, **labels: str) -> float:
    return proxy.state.metrics.value(name, **labels)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "body"), [("/v1/completions", BODY),
                                            ("/v1/chat/completions", CHAT)])
def test_decode_first_answers_stream_and_not_with_the_pushed_kv(sims, make_proxy, path, body):
    prefill, decode = sims("prefill", layerwise=True), sims("decode", layerwise=True)
    proxy = make_proxy([prefill], [decode], flow="decode-first")
    resp = httpx.post(proxy.url + path, json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["completion_tokens"] == body["max_tokens"]
    with httpx.stream("POST", proxy.url + path, json={**body, "stream": True},
                      timeout=10) as streamed:
        text = streamed.read().decode()
    assert text.endswith("data: [DONE]\n\n")
    # Same tokens as the prefill-first flow would give: D generated from the pushed KV.
    assert sim_state(decode)["held_blocks"] == 0
    assert sim_state(prefill)["requests"] == 2
    assert sim_state(prefill)["errors"] == 0


def test_a_prefill_first_proxy_in_front_of_layerwise_backends_fails_visibly(sims, make_proxy):
    prefill, decode = sims("prefill", layerwise=True), sims("decode", layerwise=True)
    proxy = make_proxy([prefill], [decode])  # the wrong flow for this connector
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code >= 400
    assert "remote_cached_tokens" in resp.text


def test_prefill_failure_ends_the_decode_leg_with_the_prefills_error(sims, make_proxy):
    prefill = sims("prefill", layerwise=True, error_rate=1.0)
    decode = sims("decode", layerwise=True, kv_abort_timeout_s=300)
    proxy = make_proxy([prefill], [decode], flow="decode-first")
    resp = httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=10)
    assert resp.status_code == 500
    assert resp.json()["error"]["type"] == "InternalServerError"
    # D was not left waiting for KV that never comes: its leg was closed, its blocks freed.
    wait_for(lambda: sim_state(decode)["running"] == 0, what="decode aborted")
    assert sim_state(decode)["held_blocks"] == 0


def test_decode_failure_before_the_first_byte_fails_over(sims, make_proxy):
    prefill = sims("prefill", layerwise=True)
    broken = sims("decode", layerwise=True, fail_first=1000)
    good = sims("decode", layerwise=True)
    proxy = make_proxy([prefill], [good, broken], flow="decode-first",
                       policy_decode="round_robin")
    for _ in range(2):
        resp = httpx.post(proxy.url + "/v1/completions", json={**BODY, "stream": True},
                          timeout=10)
        assert resp.status_code == 200
        assert resp.text.endswith("data: [DONE]\n\n")
    assert sim_state(broken)["errors"] >= 1


def test_client_gone_cancels_both_legs_and_nothing_stays_held(sims, make_proxy):
    prefill = sims("prefill", layerwise=True, prefill_ms_per_1k=200_000)  # ~1 s
    decode = sims("decode", layerwise=True, kv_abort_timeout_s=300)
    proxy = make_proxy([prefill], [decode], flow="decode-first")
    try:
        httpx.post(proxy.url + "/v1/completions", json=BODY, timeout=0.3)
    except httpx.ReadTimeout:
        pass
    wait_for(lambda: sim_state(decode)["aborted"] == 1, what="decode leg aborted")
    wait_for(lambda: sim_state(prefill)["aborted"] == 1, what="prefill leg aborted")
    assert sim_state(decode)["held_blocks"] == 0


def test_unknown_metaserver_ids_are_refused(sims, make_proxy):
    proxy = make_proxy([sims("prefill", layerwise=True)], [sims("decode", layerwise=True)],
                       flow="decode-first")
    resp = httpx.post(proxy.url + "/v1/metaserver", timeout=5,
                      json={"request_id": "cmpl-guess-0", "remote_host": "10.6.6.6"})
    assert resp.status_code == 404
    assert proxy.state.metaserver_url == proxy.url + "/v1/metaserver"


def test_decode_first_needs_a_reachable_metaserver_url():
    addr = (BackendAddress("10.0.0.1", 8100),)
    with pytest.raises(UsageError, match="metaserver"):
        ProxyConfig(prefill=addr, decode=addr, host="0.0.0.0", flow="decode-first")
    config = ProxyConfig(prefill=addr, decode=addr, host="0.0.0.0", port=8000,
                         flow="decode-first", metaserver_url="http://10.0.0.9:8000/v1/metaserver")
    assert config.metaserver_for(8000) == "http://10.0.0.9:8000/v1/metaserver"
    assert json.loads(json.dumps(config.to_dict()))["flow"] == "decode-first"


def test_cli_flow_flags():
    from click.testing import CliRunner

    from ascend_pd.cli import cli

    base = ["proxy", "--prefill", "10.0.0.1:8100", "--decode", "10.0.0.2:8200"]
    out = CliRunner().invoke(cli, [*base, "--flow", "decode-first", "--host", "10.0.0.9",
                                   "--dry-run", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)["data"]
    assert (data["flow"], data["metaserver_url"]) == ("decode-first", None)
    wild = CliRunner().invoke(cli, [*base, "--flow", "decode-first", "--host", "0.0.0.0",
                                    "--json"], catch_exceptions=False)
    assert wild.exit_code == 8  # ProxyConfigError (docs/exit-codes.md)
    assert "--metaserver-url" in json.loads(wild.output)["errors"][0]["hint"]


def test_cache_aware_follows_the_prefix_in_the_decode_first_flow_too(sims, make_proxy):
    """A repeated long prompt lands on the prefill that computed its prefix, as in the
    prefill-first flow; without the keys the second prefill (least loaded) gets half."""
    prefills = [sims("prefill", layerwise=True), sims("prefill", layerwise=True)]
    proxy = make_proxy(prefills, [sims("decode", layerwise=True)], flow="decode-first",
                       policy_prefill="cache_aware")
    long_prompt = {**BODY, "prompt": "the same system prompt, word after word " * 60}
    for _ in range(6):
        resp = httpx.post(proxy.url + "/v1/completions", json=long_prompt, timeout=10)
        assert resp.status_code == 200, resp.text
    served = sorted(sim_state(p)["requests"] for p in prefills)
    assert served == [0, 6]
