"""check-links on A3 with Mooncake: super pod ids (npu-smi info -t spod-info) must agree
across the hosts that exchange KV; run over the simulated cluster's npu-smi."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ascend_pd.sim.cluster import generate_cluster, save_cluster
from tests.netcheck.conftest import keys, run_json, write_spec


@pytest.fixture
def a3_mooncake(tmp_path: Path) -> tuple[Path, Path]:
    cluster = tmp_path / "sim.yaml"
    save_cluster(generate_cluster([("node-p", "192.0.2.31"), ("node-d", "192.0.2.32")],
                                  soc="a3"), cluster)
    spec = write_spec(tmp_path / "pd.yaml", "a3-seed", sim={"cluster": "sim.yaml"},
                      backend="sim")
    data = yaml.safe_load(spec.read_text())
    data["connector"] = {"type": "mooncake", "vllm_ascend_version": "0.11.0"}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec, cluster


def _edit_host(cluster: Path, name: str, **changes: Any) -> None:
    data = yaml.safe_load(cluster.read_text())
    host = next(h for h in data["hosts"] if h["name"] == name)
    host.update(changes)
    cluster.write_text(yaml.safe_dump(data, sort_keys=False))


def _spod(data: dict[str, Any]) -> dict[str, Any] | None:
    return next((row for row in data["summary"] if row["check"] == "spod"), None)


def test_one_super_pod_passes(a3_mooncake: tuple[Path, Path]) -> None:
    spec, _ = a3_mooncake
    code, data = run_json("check-links", "-c", str(spec), "--ping", "plane")
    assert code == 0, data["findings"]
    assert _spod(data) == {"check": "spod", "passed": 32, "warnings": 0, "errors": 0,
                           "skipped": 0}


def test_prefill_and_decode_in_different_super_pods_fail_over_hccs(
        a3_mooncake: tuple[Path, Path]) -> None:
    spec, cluster = a3_mooncake
    _edit_host(cluster, "node-d", super_pod_id=7)
    code, data = run_json("check-links", "-c", str(spec), "--ping", "plane")
    assert code == 1
    assert keys(data) == {("node-p", None, "spod"), ("node-d", None, "spod")}
    finding = next(f for f in data["findings"] if f["where"]["host"] == "node-d")
    assert finding["severity"] == "error"
    assert "node-p: 0, node-d: 7" in finding["message"]


def test_a_shared_server_index_in_one_pod_is_a_fault(a3_mooncake: tuple[Path, Path]) -> None:
    spec, cluster = a3_mooncake
    index = yaml.safe_load(cluster.read_text())["hosts"][0]["server_index"]
    _edit_host(cluster, "node-d", server_index=index)
    code, data = run_json("check-links", "-c", str(spec), "--ping", "plane")
    assert code == 1
    assert ("node-d", None, "spod") in keys(data)
    assert any(f"Server Index {index}" in f["message"] for f in data["findings"])


def test_llmdatadist_specs_do_not_query_spod_info(a3_mooncake: tuple[Path, Path]) -> None:
    spec, cluster = a3_mooncake
    data = yaml.safe_load(spec.read_text())
    data["connector"] = {"type": "llmdatadist", "vllm_ascend_version": "0.11.0"}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    _edit_host(cluster, "node-d", super_pod_id=7)
    _code, result = run_json("check-links", "-c", str(spec), "--ping", "plane")
    assert _spod(result) is None
