"""Valid specs load into typed models; every shipped example validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.examples import example_spec, shapes
from ascend_pd.spec import parse_spec


@pytest.mark.parametrize("shape", shapes())
def test_every_example_shape_is_valid(shape: str) -> None:
    spec = parse_spec(example_spec(shape))
    assert spec.prefill and spec.decode
    for _role, inst in spec.instances:
        assert inst.tp * inst.dp == len(inst.hosts) * len(inst.devices)


def test_typed_values_and_defaults() -> None:
    spec = parse_spec(example_spec("a2-1p1d"))
    assert spec.hosts[0].address == "192.0.2.11"
    assert spec.ssh.host_key_policy == "strict"
    assert spec.connector.rpc_port_base == 5557
    assert spec.prefill[0].head == "node-p"
    assert spec.host("node-d").devices == list(range(8))


def test_init_writes_then_validate_passes(tmp_path: Path) -> None:
    out = tmp_path / "pd.yaml"
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "--shape", "a3-2p1d", "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["validate", "-c", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["status"] == "ok"
    assert doc["data"]["valid"] is True


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "pd.yaml"
    out.write_text("keep me")
    result = CliRunner().invoke(cli, ["init", "-o", str(out)])
    assert result.exit_code == 2
    assert out.read_text() == "keep me"
