"""Helpers for check-links tests: a spec over a simulated cluster, and running the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from ascend_pd.cli import cli
from ascend_pd.examples import example_spec
from ascend_pd.sim.cluster import generate_cluster, save_cluster


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env, input=input)


def run_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    result = run(*args, "--json", env=env)
    return result.exit_code, json.loads(result.output)["data"]


def keys(data: dict[str, Any]) -> set[tuple[str, int | None, str]]:
    """(host, device, check) of every finding."""
    return {(f["where"]["host"], f["where"].get("device"), f["check"]) for f in data["findings"]}


def write_spec(path: Path, shape: str, devices: list[int] | None = None, **changes: Any) -> Path:
    data = yaml.safe_load(example_spec(shape))
    if devices is not None:
        for host in data["hosts"]:
            host["devices"] = devices
        for inst in data["prefill"] + data["decode"]:
            inst.update(devices=devices, tp=len(devices))
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def a2(tmp_path: Path) -> tuple[Path, Path]:
    """(spec, sim cluster): A2 node-p (prefill) + node-d (decode), 8 devices, backend sim."""
    cluster = tmp_path / "sim.yaml"
    save_cluster(generate_cluster([("node-p", "192.0.2.11"), ("node-d", "192.0.2.12")]), cluster)
    spec = write_spec(tmp_path / "pd.yaml", "a2-1p1d", sim={"cluster": "sim.yaml"}, backend="sim")
    return spec, cluster


@pytest.fixture
def a3(tmp_path: Path) -> tuple[Path, Path]:
    """(spec, sim cluster): A3 node-p + node-d, 16 dies each, backend sim."""
    cluster = tmp_path / "sim.yaml"
    save_cluster(generate_cluster([("node-p", "192.0.2.31"), ("node-d", "192.0.2.32")],
                                  soc="a3"), cluster)
    spec = write_spec(tmp_path / "pd.yaml", "a3-seed", sim={"cluster": "sim.yaml"}, backend="sim")
    return spec, cluster
