"""docs/spec.md lists every key of the spec model (the list is generated from it)."""

from __future__ import annotations

from pathlib import Path

from ascend_pd.spec.reference import BEGIN, END, keys, table

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec.md"


def test_docs_spec_md_carries_the_generated_key_list() -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == table(), (
        "docs/spec.md is out of date: replace its keys block with the output of "
        "`python -m ascend_pd.spec.reference`")


def test_the_list_reaches_every_nested_key() -> None:
    paths = {k for k, _t, _d in keys()}
    for key in ("hosts[].docker.image", "hosts[].ssh.address", "model.kv_cache_dtype",
                "connector.abort_request_timeout_s", "decode[].extra_args", "sim.cluster",
                "proxy.admin_token_env", "state_dir"):
        assert key in paths
