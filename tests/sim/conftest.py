"""Fixtures for the simulator tests: small sim cluster files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ascend_pd.sim.cluster import SimCluster, generate_cluster, save_cluster


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
