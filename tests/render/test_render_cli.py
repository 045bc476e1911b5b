"""`ascend-pd render` and `ascend-pd validate` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ascend_pd.cli import cli

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
    text = spec_text("a3-seed").replace('vllm_ascend_version: "0.11.0"',
                                        'vllm_ascend_version: "0.12.0"')
    spec = _spec(tmp_path, "a3-seed", text)
    result = CliRunner().invoke(cli, ["render", "-c", spec, "-o", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "has no LLMDataDist connector" in result.output
    assert not (tmp_path / "d").exists()


def test_validate_reports_pd_errors_and_warnings(tmp_path: Path) -> None:
    text = spec_text("a3-2p1d").replace("max_num_batched_tokens: 256",
                                        "max_num_batched_tokens: 256\n"
                                        "    env: {VLLM_USE_V1: '1'}\n"
                                        "    extra_args: ['---enforce-eager']")
    spec = _spec(tmp_path, "a3-2p1d", text)
    result = CliRunner().invoke(cli, ["validate", "-c", spec, "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)["data"]
    assert [e["key"] for e in data["errors"]] == ["decode[0].extra_args[0]"]
    assert [w["key"] for w in data["warnings"]] == ["decode[0].env.VLLM_USE_V1"]
    human = CliRunner().invoke(cli, ["validate", "-c", spec])
    assert "error: decode[0].extra_args[0]: '---enforce-eager' has three dashes" in human.output
