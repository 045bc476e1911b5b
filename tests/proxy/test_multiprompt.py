"""Completions with a list of prompts, and n > 1: never a 200 with the wrong text.

The simulators behave like vLLM here: a prefill answers with the first prompt's
kv_transfer_params only (and keeps every prompt's blocks), a decode applies one set of params
to every prompt -- so without the proxy's split every choice after the first is wrong."""

from __future__ import annotations

import httpx

from ascend_pd.simserver.tokens import generated_tokens
from tests.proxy.conftest import MODEL, sim_state, wait_for

PROMPTS = ["why is the link down", "what does hccn_tool say", "is tls consistent"]


def _expected(prompt: str, n: int) -> str:
    return "".join(generated_tokens(prompt, 0, n))


def test_the_simulated_pair_shows_the_bug_without_a_split(sims):
    prefill, decode = sims("prefill", kv_abort_timeout_s=300), sims("decode")
    body = {"model": MODEL, "prompt": PROMPTS[:2], "max_tokens": 3}
    kv = httpx.post(prefill.url + "/v1/completions", timeout=5, headers={"X-Request-Id": "b"},
                    json={**body, "kv_transfer_params": {"do_remote_decode": True}}
                    ).json()["kv_transfer_params"]
    answer = httpx.post(decode.url + "/v1/completions", timeout=5,
                        headers={"X-Request-Id": "b"},
                        json={**body, "kv_transfer_params": kv}).json()
    texts = [c["text"] for c in answer["choices"]]
    assert texts[0] == _expected(PROMPTS[0], 3)
    assert texts[1] != _expected(PROMPTS[1], 3)  # the first prompt's KV, reused
    assert sim_state(prefill)["held_blocks"] > 0  # the second prompt's blocks, leaked


def test_list_prompts_and_n_are_split_into_pairs_and_merged_in_order(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    resp = httpx.post(proxy.url + "/v1/completions", timeout=20,
                      headers={"X-Request-Id": "multi-1"},
                      json={"model": MODEL, "prompt": PROMPTS, "max_tokens": 4, "n": 2})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["id"] == "cmpl-multi-1"
    choices = data["choices"]
    assert [c["index"] for c in choices] == list(range(6))
    assert [c["text"] for c in choices] == [_expected(p, 4) for p in PROMPTS for _ in (0, 1)]
    assert data["usage"]["completion_tokens"] == 6 * 4
    singles = [httpx.post(proxy.url + "/v1/completions", timeout=10,
                          json={"model": MODEL, "prompt": p, "max_tokens": 4}).json()
               for p in PROMPTS]
    assert data["usage"]["prompt_tokens"] == sum(s["usage"]["prompt_tokens"] for s in singles)
    # Token-id prompts too; and nothing is left held on any prefill.
    ids = httpx.post(proxy.url + "/v1/completions", timeout=20,
                     json={"model": MODEL, "prompt": [[1, 2, 3], [4, 5]], "max_tokens": 2})
    assert ids.status_code == 200
    assert len(ids.json()["choices"]) == 2
    wait_for(lambda: sum(sim_state(p)["held_blocks"] for p in cluster["prefill"]) == 0,
             what="no blocks held")


def test_chat_n_is_split_and_streamed_lists_are_refused(cluster, make_proxy):
    proxy = make_proxy(cluster["prefill"], cluster["decode"])
    chat = httpx.post(proxy.url + "/v1/chat/completions", timeout=20,
                      json={"model": MODEL, "n": 3, "max_tokens": 2,
                            "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 200
    assert [c["index"] for c in chat.json()["choices"]] == [0, 1, 2]
    refused = httpx.post(proxy.url + "/v1/completions", timeout=5,
                         json={"model": MODEL, "prompt": PROMPTS, "stream": True})
    assert refused.status_code == 400
    assert "stream: false" in refused.json()["error"]["message"]
