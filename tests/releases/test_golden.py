"""Golden release facts, each traced to the upstream file at that release (path:line inside
the released sdist of vllm-project/vllm-ascend), and the checked-in data equals what the
harvester extracts from the real sdists."""

from __future__ import annotations

from pathlib import Path

import pytest

from ascend_pd.releases import load, resolve
from ascend_pd.releases.data import ReleaseData
from ascend_pd.releases.harvest.build import build, render
from tests.sdists import GOLDEN, cached_trees

MATRIX = "0.30.0rc2:docs/source/community/versioning_policy.md"

# (version, fact, expected value, where upstream says so)
GOLDEN_FACTS = [
    # v0.11.0: torchair still exists; Mooncake reads vLLM's NIXL abort timeout; LLMDataDist
    # reads the rank table and the renamed RPC port.
    ("0.11.0", "connectors", {"LLMDataDistCMgrConnector", "MooncakeConnectorV1",
                              "MooncakeLayerwiseConnector"}, "vllm_ascend/distributed/__init__.py:23"),
    ("0.11.0", "mooncake_abort_timeout_env", "VLLM_NIXL_ABORT_REQUEST_TIMEOUT",
     "vllm_ascend/distributed/mooncake_connector.py:121"),
    ("0.11.0", "llmdd_rpc_port_env", "VLLM_ASCEND_LLMDD_RPC_PORT",
     "vllm_ascend/distributed/llmdatadist_c_mgr_connector.py:190"),
    ("0.11.0", "reads_ranktable", True,
     "vllm_ascend/distributed/llmdatadist_c_mgr_connector.py:428"),
    ("0.11.0", "use_ascend_direct", True, "vllm_ascend/distributed/mooncake_connector.py:905"),
    ("0.11.0", "torchair", True, "vllm_ascend/ascend_config.py:38"),
    ("0.11.0", "cann", "8.3.RC2", f"{MATRIX}:46"),
    ("0.11.0", "torch_npu", "2.7.1.post1", f"{MATRIX}:46"),
    # v0.13.0: no torchair, no LLMDataDist, still the NIXL abort name.
    ("0.13.0", "connectors", {"MooncakeConnectorV1", "MooncakeLayerwiseConnector"},
     "vllm_ascend/distributed/__init__.py:26"),
    ("0.13.0", "mooncake_abort_timeout_env", "VLLM_NIXL_ABORT_REQUEST_TIMEOUT",
     "vllm_ascend/distributed/mooncake_connector.py:162"),
    ("0.13.0", "torchair", False, None),
    ("0.13.0", "reads_ranktable", False, None),
    ("0.13.0", "cann", "8.5.0", f"{MATRIX}:42"),
    # v0.18.0: the Mooncake abort timeout renamed (PR #8618).
    ("0.18.0", "mooncake_abort_timeout_env", "VLLM_MOONCAKE_ABORT_REQUEST_TIMEOUT",
     "vllm_ascend/distributed/kv_transfer/kv_p2p/mooncake_connector.py:176"),
    ("0.18.0", "torch_npu", "2.9.0.post1+git4c901a4", f"{MATRIX}:35"),
    ("0.18.0", "mooncake_version", "0.3.9", f"{MATRIX}:35"),
    # 0.23.0.post1 (current stable): the hybrid connector; CANN 9.1.0; the -npu Mooncake wheel.
    ("0.23.0.post1", "connectors", {"MooncakeConnectorV1", "MooncakeHybridConnector",
                                    "MooncakeLayerwiseConnector"},
     "vllm_ascend/distributed/kv_transfer/__init__.py"),
    ("0.23.0.post1", "cann", "9.1.0", f"{MATRIX}:28"),
    ("0.23.0.post1", "vllm", "0.23.0", f"{MATRIX}:28"),
    ("0.23.0.post1", "python", ">=3.10,<3.13", f"{MATRIX}:28"),
    ("0.23.0.post1", "mooncake_package", "mooncake-transfer-engine-npu", "0.23.0.post1:Dockerfile.a3:33"),
    ("0.23.0.post1", "additional_config_strict", False, None),
    # 0.30.0rc2: additional_config is a pydantic model with extra="forbid"; V2 and Pull.
    ("0.30.0rc2", "additional_config_strict", True, "vllm_ascend/ascend_config.py:565"),
    ("0.30.0rc2", "cann", "9.2.0", f"{MATRIX}:26"),
    ("0.30.0rc2", "mooncake_abort_timeout_env", "VLLM_MOONCAKE_ABORT_REQUEST_TIMEOUT",
     "vllm_ascend/distributed/kv_transfer/kv_p2p/mooncake_connector.py:240"),
]

_COMPAT = {"cann", "torch_npu", "vllm", "python", "mooncake_version", "mooncake_package"}


@pytest.mark.parametrize(("version", "fact", "expected", "where"), GOLDEN_FACTS,
                         ids=[f"{v}-{f}" for v, f, _e, _w in GOLDEN_FACTS])
def test_golden_fact(version: str, fact: str, expected: object, where: str | None) -> None:
    facts = resolve(version).facts
    assert resolve(version).exact
    if fact == "connectors":
        assert set(facts.connectors) == expected
        assert all(c.source.startswith(where) or where.split(":")[0] in c.source
                   for c in facts.connectors.values())
        return
    if fact in _COMPAT:
        assert getattr(facts.compat, fact) == expected
        source = facts.sources.get("compat.mooncake") if fact == "mooncake_package" else \
            facts.compat.source
        assert source == where
        return
    assert getattr(facts, fact) == expected
    if where is not None:
        key = {"reads_ranktable": "reads_ranktable"}.get(fact, fact)
        assert facts.sources[key] == where


def test_layerwise_needs_the_decode_first_proxy_everywhere() -> None:
    for facts in load().releases:
        layerwise = facts.connector("MooncakeLayerwiseConnector")
        if layerwise is not None:
            assert layerwise.flow == "decode-first", facts.version
        v1 = facts.connector("MooncakeConnectorV1")
        if v1 is not None:
            assert v1.flow == "prefill-first", facts.version


def test_vllm_pairing_is_not_same_xyz() -> None:
    # v0.14.0rc1 is built against vLLM v0.14.1 (the matrix row), not 0.14.0.
    assert resolve("0.14.0rc1").facts.compat.vllm == "0.14.1"


def _sources_exist(trees: dict[str, Path], data: ReleaseData) -> None:
    for facts in data.releases:
        for fact, where in facts.sources.items():
            parts = where.split(":")
            if len(parts) == 2 and fact not in ("env_vars",):
                path, line = parts
                text = (trees[facts.version] / path).read_text("utf-8").splitlines()
                assert 0 < int(line) <= len(text), (facts.version, fact, where)


@pytest.mark.slow
def test_checked_in_data_equals_extraction_from_the_real_sdists() -> None:
    # The five golden releases (downloaded when missing; ~45 MB). Their compatibility rows come
    # from the newest matrix (0.30.0rc2's), which is one of them. `scripts/harvest-releases`
    # re-checks every release.
    trees = cached_trees(GOLDEN)
    extracted = build(trees)
    checked_in = {r.version: r for r in load().releases}
    for facts in extracted.releases:
        assert facts.to_dict() == checked_in[facts.version].to_dict(), facts.version
    if set(trees) >= set(checked_in):
        assert render(extracted) == render(load()), "re-run scripts/harvest-releases"
    _sources_exist(trees, extracted)
    assert set(GOLDEN) <= set(trees)


def test_the_data_file_is_packaged_and_complete() -> None:
    versions = [r.version for r in load().releases]
    assert versions[0] == "0.9.1rc1"
    assert {"0.9.1", "0.11.0", "0.12.0rc1", "0.23.0.post1", "0.30.0rc2"} <= set(versions)
