"""The cuda goldens' values are traced to upstream: every source of ``render.upstream`` is
cited in tests/golden/render/SOURCES.md, and each cited line really says so in the released
vLLM sdist (fetched into the cache like doctor's deep tests; CI fails without them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ascend_pd.render import upstream
from tests.sdists import vllm_tree

from .conftest import GOLDEN


def _cuda_section() -> str:
    text = (GOLDEN / "SOURCES.md").read_text()
    return " ".join(text[text.index("\n## cuda"):].split())  # citations wrap lines


def test_every_upstream_source_is_cited_in_sources_md() -> None:
    section = _cuda_section()
    for source in upstream.SOURCES:
        assert f"vLLM {source.version} `{source.ref}`" in section, source


@pytest.mark.parametrize("version", sorted({s.version for s in upstream.SOURCES}))
def test_cited_lines_say_what_the_plan_renders(version: str) -> None:
    tree: Path = vllm_tree(version)
    for source in (s for s in upstream.SOURCES if s.version == version):
        lines = (tree / source.path).read_text(encoding="utf-8").splitlines()
        assert source.needle in lines[source.line - 1], (source, lines[source.line - 1])


def test_p2p_nccl_is_gone_where_the_data_says() -> None:
    factory = "vllm/distributed/kv_transfer/kv_connector/factory.py"
    gone = vllm_tree(str(upstream.P2P_NCCL_GONE_IN)) / factory
    assert "P2pNcclConnector" not in gone.read_text(encoding="utf-8")
    assert upstream.p2p_nccl_status(str(upstream.P2P_NCCL_GONE_IN)) == "removed"
    assert upstream.storage_connector("0.12.0") == "SharedStorageConnector"
