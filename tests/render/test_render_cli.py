"""`ascend-pd render` and `ascend-pd validate` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.examples import shapes
from ascend_pd.releases import newest_stable

from .conftest import spec_text


def _spec(tmp_path: Path, name: str, text: str | None = None) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text if text is not None else spec_text(name))
    return str(path)


def test_render_json_then_check(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "a3-seed")
    out = str(tmp_path / "deploy")
    runner = CliRunner()
    result = runner.invoke(cli, ["render", "-c", spec, "-o", out, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "ok"
    assert data["data"]["processes"] == 2
    assert "manifest.json" in data["data"]["files"]
    result = runner.invoke(cli, ["render", "-c", spec, "-o", out, "--check"])
    assert result.exit_code == 0
    assert "is up to date" in result.output
    (tmp_path / "deploy" / "prefill-0@node-p.env").unlink()
    result = runner.invoke(cli, ["render", "-c", spec, "-o", out, "--check", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["data"]["missing"] == ["prefill-0@node-p.env"]


def test_render_refuses_an_inconsistent_spec(tmp_path: Path) -> None:
    text = spec_text("a2-1p1d-legacy-llmdatadist").replace('vllm_ascend_version: "0.11.0"',
                                                           'vllm_ascend_version: "0.13.0"')
    spec = _spec(tmp_path, "legacy", text)
    result = CliRunner().invoke(cli, ["render", "-c", spec, "-o", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "has no LLMDataDist connector" in result.output
    assert not (tmp_path / "d").exists()


def test_validate_reports_pd_errors_and_warnings(tmp_path: Path) -> None:
    text = spec_text("a3-2p1d").replace("max_num_batched_tokens: 256",
                                        "max_num_batched_tokens: 256\n"
                                        "    extra_args: ['---enforce-eager']")
    head, decode = text.split("\ndecode:", 1)
    decode = decode.replace('ASCEND_TRANSFER_TIMEOUT: "10000"',
                            'ASCEND_TRANSFER_TIMEOUT: "10000"\n      PHYSICAL_DEVICES: "0"', 1)
    text = head + "\ndecode:" + decode
    spec = _spec(tmp_path, "a3-2p1d", text)
    result = CliRunner().invoke(cli, ["validate", "-c", spec, "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)["data"]
    by_severity = {s: [f["where"]["key"] for f in data["findings"] if f["severity"] == s]
                   for s in ("error", "warning")}
    assert by_severity == {"error": ["decode[0].extra_args[0]"],
                           "warning": ["decode[0].env.PHYSICAL_DEVICES"]}
    line = next(i for i, row in enumerate(Path(spec).read_text().splitlines(), 1)
                if "---enforce-eager" in row)
    human = CliRunner().invoke(cli, ["validate", "-c", spec])
    assert (f"error: decode[0].extra_args[0] (line {line}): '---enforce-eager' has three "
            "dashes") in human.output


@pytest.mark.parametrize("shape", [s for s in shapes() if "legacy" not in s])
def test_every_init_shape_targets_mooncake_on_the_current_stable_release(
        shape: str, tmp_path: Path) -> None:
    runner = CliRunner()
    path = str(tmp_path / "pd.yaml")
    assert runner.invoke(cli, ["init", "--shape", shape, "-o", path]).exit_code == 0
    spec = yaml.safe_load(Path(path).read_text())
    assert spec["connector"]["type"] == "mooncake"
    assert spec["connector"]["vllm_ascend_version"] == newest_stable()
    validated = runner.invoke(cli, ["validate", "-c", path, "--json"])
    assert validated.exit_code == 0, validated.output
    data = json.loads(validated.output)["data"]
    assert data["findings"] == [] and data["valid"]
    rendered = runner.invoke(cli, ["render", "-c", path, "-o", str(tmp_path / "d"), "--json"])
    assert rendered.exit_code == 0, rendered.output
    env_files = list((tmp_path / "d").glob("*.env"))
    assert env_files and all("RANK_TABLE" not in f.read_text() for f in env_files)


def test_init_default_is_mooncake_and_the_legacy_shape_keeps_llmdatadist(tmp_path: Path) -> None:
    runner = CliRunner()
    default = yaml.safe_load(runner.invoke(cli, ["init"]).output)
    assert default["connector"]["type"] == "mooncake"
    legacy = yaml.safe_load(runner.invoke(
        cli, ["init", "--shape", "a2-1p1d-legacy-llmdatadist"]).output)
    assert legacy["connector"] == {"type": "llmdatadist", "vllm_ascend_version": "0.11.0",
                                   "ranktable_path": "/etc/ascend-pd/ranktable.json"}
    path = tmp_path / "legacy.yaml"
    path.write_text(yaml.safe_dump(legacy))
    assert runner.invoke(cli, ["validate", "-c", str(path)]).exit_code == 0
