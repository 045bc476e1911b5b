"""The simulated vLLM server as a launcher and the proxy see it: a real child process."""

from __future__ import annotations

import time

import httpx
import pytest

from ascend_pd.errors import LaunchError
from ascend_pd.simserver import SimServerProcess
from ascend_pd.simserver.tokens import count_text, generated_tokens

MODEL = "sim-model"


def _prefill(server: SimServerProcess, rid: str, prompt: str = "a b c") -> dict:
    resp = httpx.post(server.url + "/v1/completions", timeout=5, headers={"X-Request-Id": rid},
                      json={"model": MODEL, "prompt": prompt, "max_tokens": 1,
                            "kv_transfer_params": {"do_remote_decode": True}})
    assert resp.status_code == 200
    return resp.json()["kv_transfer_params"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pair():
    with SimServerProcess("prefill", model=MODEL, kv_abort_timeout_s=2) as p, \
            SimServerProcess("decode", model=MODEL, decode_ms_per_token=0) as d:
        yield p, d


def test_startup_lines_end_with_application_startup_complete(pair):
    prefill, _ = pair
    assert prefill.lines[-1] == "INFO:     Application startup complete."
    assert any(f"Starting vLLM API server 0 on http://127.0.0.1:{prefill.port}" in line
               for line in prefill.lines)
    assert httpx.get(prefill.url + "/health", timeout=5).status_code == 200
    assert httpx.get(prefill.url + "/v1/models", timeout=5).json()["data"][0]["id"] == MODEL


def test_prefill_returns_kv_params_and_holds_blocks_until_pulled(pair):
    prefill, decode = pair
    kv = _prefill(prefill, "r1", "word " * 300)
    assert kv["do_remote_prefill"] is True
    assert kv["do_remote_decode"] is False
    assert kv["remote_port"] == prefill.port
    assert kv["remote_request_id"] == "r1"
    assert set(kv) >= {"remote_engine_id", "remote_block_ids", "remote_host", "remote_tp_size"}
    held = httpx.get(prefill.url + "/sim/state", timeout=5).json()
    assert held["held_blocks"] == len(kv["remote_block_ids"]) == 3
    metrics = httpx.get(prefill.url + "/metrics", timeout=5).text
    assert 'ascend_pd_sim_kv_blocks_held{model_name="sim-model",role="prefill"} 3' in metrics
    resp = httpx.post(decode.url + "/v1/completions", timeout=5, headers={"X-Request-Id": "r1"},
                      json={"model": MODEL, "prompt": "word " * 300, "max_tokens": 3,
                            "kv_transfer_params": kv})
    assert resp.status_code == 200
    assert resp.json()["usage"]["completion_tokens"] == 3
    assert httpx.get(prefill.url + "/sim/state", timeout=5).json()["held_blocks"] == 0


@pytest.mark.parametrize("kv", [None, {"do_remote_prefill": True}, "garbage"])
def test_decode_rejects_missing_or_garbled_kv_params(pair, kv):
    _, decode = pair
    resp = httpx.post(decode.url + "/v1/completions", timeout=5,
                      json={"model": MODEL, "prompt": "x", "kv_transfer_params": kv})
    assert resp.status_code == 400
    assert "Invalid KVTransferParams" in resp.json()["error"]["message"]
    # The log line reaches us through the server's stdout pipe, maybe after the response.
    deadline = time.monotonic() + 5
    while not any("Invalid KVTransferParams" in line and "will be discard" in line
                  for line in decode.lines):
        assert time.monotonic() < deadline, decode.lines[-5:]
        time.sleep(0.02)


def test_decode_rejects_blocks_no_prefill_holds(pair):
    prefill, decode = pair
    kv = _prefill(prefill, "r2")
    kv["remote_block_ids"] = [999999]
    resp = httpx.post(decode.url + "/v1/completions", timeout=5,
                      json={"model": MODEL, "prompt": "x", "kv_transfer_params": kv})
    assert resp.status_code == 400
    assert "holds no such blocks" in resp.json()["error"]["message"]


def test_unpulled_blocks_are_force_freed_after_the_abort_timeout(pair):
    prefill, _ = pair
    _prefill(prefill, "r3")
    deadline = time.monotonic() + 10
    while httpx.get(prefill.url + "/sim/state", timeout=5).json()["held_blocks"]:
        assert time.monotonic() < deadline, "blocks never freed"
        time.sleep(0.05)
    assert any("Force freed expired request r3" in line for line in prefill.lines)


def test_fault_knobs_fail_first_and_crash_after():
    with SimServerProcess("prefill", model=MODEL, fail_first=1, crash_after=1) as p:
        body = {"model": MODEL, "prompt": "x"}
        assert httpx.post(p.url + "/v1/completions", json=body, timeout=5).status_code == 503
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(p.url + "/v1/completions", json=body, timeout=5)
        assert p.wait(5) == 1
        assert any("EngineCore encountered a fatal error" in line for line in p.lines)


def test_hang_accepts_but_never_answers():
    with SimServerProcess("decode", model=MODEL, hang=True) as d:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(d.url + "/health", timeout=0.3)


def test_busy_port_is_a_launch_error():
    with SimServerProcess("decode", model=MODEL) as d:
        with pytest.raises(LaunchError, match=r"address already in use|did not start"):
            SimServerProcess("decode", model=MODEL, port=d.port).start(timeout=10)


def test_generated_text_retokenizes_to_the_same_count():
    text = "".join(generated_tokens("seed", 0, 37))
    assert count_text(text) == 37
    assert count_text("abcdefghi jk") == 4


def test_api_key_guards_v1_like_vllm_but_not_health():
    with SimServerProcess("decode", model=MODEL, api_key="sk-1") as server:
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        denied = httpx.get(server.url + "/v1/models", timeout=5)
        assert (denied.status_code, denied.json()) == (401, {"error": "Unauthorized"})
        ok = httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer sk-1"},
                       timeout=5)
        assert ok.status_code == 200


def test_no_kv_params_prefill_answers_without_them():
    with SimServerProcess("prefill", model=MODEL, no_kv_params=True) as server:
        resp = httpx.post(server.url + "/v1/completions", timeout=5,
                          json={"model": MODEL, "prompt": "a b", "max_tokens": 1,
                                "kv_transfer_params": {"do_remote_decode": True}})
        assert resp.status_code == 200
        assert resp.json()["kv_transfer_params"] is None
        assert httpx.get(server.url + "/sim/state", timeout=5).json()["held_blocks"] == 0
