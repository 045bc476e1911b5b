"""Shared helpers for the simulator tests: reference samples and small clusters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ascend_pd.sim.cluster import SimCluster, generate_cluster, save_cluster

DATA = Path(__file__).parents[1] / "data" / "hccn"


def sample(name: str) -> str:
    """A verbatim reference sample."""
    return (DATA / name).read_text(encoding="utf-8")


def lines_of(name: str, *, skip: int = 0) -> list[str]:
    """The sample's lines after ``skip`` leading ones, without `...` elision lines."""
    return [ln for ln in sample(name).splitlines()[skip:] if ln.strip() != "..."]


@pytest.fixture
def write_cluster(tmp_path: Path) -> Callable[[SimCluster], Path]:
    """Save a cluster to a fresh file under tmp_path and return its path."""

    def write(cluster: SimCluster) -> Path:
        path = tmp_path / "sim-cluster.yaml"
        save_cluster(cluster, path)
        return path

    return write


@pytest.fixture
def a2_pair(write_cluster: Callable[[SimCluster], Path]) -> Path:
    """Two healthy A2 hosts (p0, d0) with 8 devices each."""
    return write_cluster(generate_cluster([("p0", "192.0.0.1"), ("d0", "192.0.0.2")], "a2"))


@pytest.fixture
def a3_pair(write_cluster: Callable[[SimCluster], Path]) -> Path:
    """Two healthy A3 hosts (p0, d0) with 16 dies each."""
    return write_cluster(generate_cluster([("p0", "192.0.0.1"), ("d0", "192.0.0.2")], "a3"))
