"""The storage connector with real vLLM: ``connector.type: storage`` renders vLLM's
ExampleConnector (kv_both, ``shared_storage_path``); P writes each prompt's KV there, D reads
it by the prompt's hash, and the prefill answer carries no kv_transfer_params, so the rendered
proxy runs with ``--kv-params optional``.

The connector stores and loads whole KV blocks of the prompt minus its last token
(vllm 0.32 kv_connector/v1/example_connector.py, get_num_new_matched_tokens): decode computes
the remainder itself. The tests run in file order; the stop comes last.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ascend_pd.demo.real import MODEL
from tests.realvllm.conftest import StoragePair
from tests.realvllm.servers import cli, session_members
from tests.realvllm.test_pd_proxy import metric

pytestmark = [pytest.mark.realvllm, pytest.mark.timeout(1200)]

WORDS = ("the", "prefill", "server", "writes", "its", "cache", "to", "a", "shared", "path",
         "for", "the", "decode", "server")
#: a prompt of several KV blocks (the tiny tokenizer makes ~3.5 tokens of a word)
LONG = " ".join(WORDS[i % len(WORDS)] for i in range(260))
BY_SOURCE = "vllm:prompt_tokens_by_source_total"


def complete(proc: Any, prompt: str) -> dict[str, Any]:
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 16, "temperature": 0,
            "return_token_ids": True}
    answer = httpx.post(proc.url + "/v1/completions", json=body, timeout=300)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def test_the_rendered_proxy_accepts_prefill_answers_without_kv_params(storage_pd: StoragePair):
    script = (storage_pd.spec.parent / "deploy" / "proxy@node-p.sh").read_text()
    assert "--kv-params optional" in script
    kv = (storage_pd.spec.parent / "deploy" / "p0@node-p.sh").read_text()
    assert '"kv_connector":"ExampleConnector"' in kv and str(storage_pd.kv_dir) in kv


def test_decode_reads_the_prompts_kv_from_the_shared_path(storage_pd: StoragePair):
    # The reference: prefill computes the prompt itself (nothing is stored for it yet) and
    # writes its KV under the shared path on the way.
    assert not storage_pd.kv_dir.exists() or not any(storage_pd.kv_dir.iterdir())
    ref = complete(storage_pd.prefill, LONG)
    assert any(storage_pd.kv_dir.iterdir()), "prefill stored nothing under the shared path"
    before = {s: metric(storage_pd.decode, BY_SOURCE, source=s)
              for s in ("local_compute", "external_kv_transfer")}
    via = complete(storage_pd.proxy, LONG)
    assert via["choices"][0]["token_ids"] == ref["choices"][0]["token_ids"]
    assert via["choices"][0]["text"] == ref["choices"][0]["text"]
    prompt = via["usage"]["prompt_tokens"]
    loaded = metric(storage_pd.decode, BY_SOURCE, source="external_kv_transfer") - before[
        "external_kv_transfer"]
    computed = metric(storage_pd.decode, BY_SOURCE, source="local_compute") - before[
        "local_compute"]
    # Whole blocks came from storage, decode computed only the tail.
    assert loaded + computed == prompt
    assert loaded >= prompt * 3 / 4, (loaded, computed)


def test_a_short_prompt_is_computed_by_decode_and_still_right(storage_pd: StoragePair):
    # Shorter than one KV block: nothing to store or load; decode computes it all, and the
    # proxy must not refuse the prefill answer for lacking kv_transfer_params.
    short = "the prefill server"
    ref = complete(storage_pd.prefill, short)
    via = complete(storage_pd.proxy, short)
    assert via["choices"][0]["token_ids"] == ref["choices"][0]["token_ids"]


def test_stop_leaves_no_process(storage_pd: StoragePair):
    result = cli("stop", "-c", str(storage_pd.spec), "--grace", "10", timeout=120)
    assert result["exit_code"] == 0, result
    left = [pid for unit in (storage_pd.prefill, storage_pd.decode, storage_pd.proxy)
            for pid in session_members(unit.pid)]
    assert left == [], f"processes left after stop: {left}"
