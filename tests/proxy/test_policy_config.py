"""Pure parts of the proxy: selection policies, health bookkeeping, config and contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from ascend_pd.errors import ProxyError, UsageError
from ascend_pd.examples import example_spec
from ascend_pd.proxy import BackendAddress, Pool, contract, proxy_config_from_spec
from ascend_pd.spec import load_spec

A, B, C = (BackendAddress("10.0.0.1", 8100), BackendAddress("10.0.0.2", 8100),
           BackendAddress("10.0.0.3", 8100))


def test_least_loaded_prefill_uses_outstanding_tokens():
    pool = Pool.of("prefill", [A, B])
    a, b = pool.backends
    pool.acquire(a, tokens=5000)
    pool.acquire(b, tokens=10)
    pool.acquire(b, tokens=10)  # more requests, fewer tokens: b is less loaded
    assert all(pool.choose() is b for _ in range(5))
    pool.release(a, tokens=5000)
    assert pool.choose() is a


def test_least_loaded_decode_uses_requests_and_spreads_ties():
    pool = Pool.of("decode", [A, B, C])
    picks = {pool.choose().address for _ in range(6)}  # all idle: ties rotate
    assert picks == {A, B, C}
    pool.acquire(pool.backends[0])
    pool.acquire(pool.backends[1])
    assert pool.choose() is pool.backends[2]


def test_round_robin_power_of_two_and_exclude():
    rr = Pool.of("decode", [A, B], policy="round_robin")
    assert [rr.choose().address for _ in range(4)] == [B, A, B, A]
    p2 = Pool.of("decode", [A, B, C], policy="power_of_two", seed=1)
    busy = p2.backends[0]
    for _ in range(3):
        p2.acquire(busy)
    assert all(p2.choose() is not busy for _ in range(20))
    assert rr.choose(exclude=[rr.backends[0]]) is rr.backends[1]
    assert rr.choose(exclude=rr.backends) is None


def test_eject_after_failures_restore_after_successes():
    pool = Pool.of("decode", [A])
    backend = pool.backends[0]
    assert Pool.record(backend, False, eject_after=2, restore_after=2) is None
    assert Pool.record(backend, False, eject_after=2, restore_after=2) == "ejected"
    assert pool.choose() is None
    assert Pool.record(backend, True, eject_after=2, restore_after=2) is None
    assert Pool.record(backend, True, eject_after=2, restore_after=2) == "restored"
    assert pool.choose() is backend


@pytest.mark.parametrize(("text", "host", "port", "url"), [
    ("10.0.0.5:8100", "10.0.0.5", 8100, "http://10.0.0.5:8100"),
    ("[fd00::5]:8100", "fd00::5", 8100, "http://[fd00::5]:8100"),
    ("node-p:8000", "node-p", 8000, "http://node-p:8000"),
])
def test_backend_address_parsing(text, host, port, url):
    address = BackendAddress.parse(text)
    assert (address.host, address.port, address.url) == (host, port, url)


@pytest.mark.parametrize("text", ["10.0.0.5", "fd00::5:8100", "host:99999", ":80"])
def test_bad_backend_address_is_a_usage_error(text):
    with pytest.raises(UsageError):
        BackendAddress.parse(text)


def _example(shape: str, tmp_path: Path, edit: tuple[str, str] = ("", "")) -> Path:
    path = tmp_path / "pd.yaml"
    path.write_text(example_spec(shape).replace(*edit))
    return path


def test_config_from_spec_uses_head_hosts_and_ports(tmp_path):
    spec = load_spec(_example("a3-2p1d", tmp_path))
    config = proxy_config_from_spec(spec, environ={})
    assert [str(a) for a in config.prefill] == ["192.0.2.21:8100", "192.0.2.22:8100"]
    assert [str(a) for a in config.decode] == ["192.0.2.23:8200"]  # d1 is headless
    assert config.port == 8000


def test_config_from_spec_admin_token_env(tmp_path):
    spec = load_spec(_example("a2-1p1d", tmp_path,
                              ("proxy:\n", "proxy:\n  admin_token_env: PD_ADMIN\n")))
    with pytest.raises(ProxyError, match="PD_ADMIN"):
        proxy_config_from_spec(spec, environ={})
    config = proxy_config_from_spec(spec, environ={"PD_ADMIN": "tok"})
    assert config.admin_token == "tok"
    assert config.to_dict()["admin_token"] == "***"


def test_prefill_and_decode_legs_follow_the_contract():
    body = {"model": "m", "prompt": "p", "stream": True, "max_tokens": 50,
            "max_completion_tokens": 50, "stream_options": {"include_usage": True}}
    leg = contract.prefill_body(body)
    assert leg["kv_transfer_params"] == {
        "do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
        "remote_block_ids": None, "remote_host": None, "remote_port": None}
    assert (leg["stream"], leg["max_tokens"], leg["min_tokens"],
            leg["max_completion_tokens"]) == (False, 1, 1, 1)
    assert "stream_options" not in leg
    assert "max_completion_tokens" not in contract.prefill_body({"prompt": "p"})
    kv = {"remote_block_ids": [1], "opaque": {"x": 1}}
    assert contract.decode_body(body, kv) == {**body, "kv_transfer_params": kv}
    assert body["stream"] is True  # the client's body is never modified


def test_chat_continuation_appends_an_assistant_turn():
    messages = [{"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    body = {"model": "m", "messages": messages, "max_tokens": 10}
    cont = contract.continuation_body(body, " partial", 6)
    assert cont["messages"][:2] == messages
    assert cont["messages"][2] == {"role": "assistant", "content": " partial"}
    assert cont["continue_final_message"] is True
    assert cont["add_generation_prompt"] is False
    assert cont["max_tokens"] == 6
    assert len(messages) == 2
    assert contract.estimate_prompt_tokens(
        {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:" + "A" * 10000}},
            {"type": "text", "text": "x" * 40}]}]}) == 10
