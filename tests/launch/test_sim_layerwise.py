"""A simulated deployment follows its connector's flow: with MooncakeLayerwiseConnector the
plan renders a decode-first proxy, and the simulated servers it launches behave like the
layerwise connector (D asks the proxy's /v1/metaserver, P pushes the KV), so requests
through the rendered proxy are answered as they would be on NPUs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.demo import traffic
from ascend_pd.demo.setup import build_world


def test_a_layerwise_sim_deployment_serves_through_its_decode_first_proxy(
        tmp_path: Path) -> None:
    world = build_world(tmp_path / "world")
    spec = yaml.safe_load(world.spec_path.read_text())
    spec["connector"]["mooncake_connector"] = "MooncakeLayerwiseConnector"
    world.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    runner = CliRunner()
    launched = runner.invoke(cli, ["launch", "-c", str(world.spec_path), "--timeout", "60",
                                   "--json"])
    try:
        assert launched.exit_code == 0, launched.output
        manifest = json.loads((Path(spec["state_dir"]) / "manifest.json").read_text())
        assert manifest["proxy"]["flow"] == "decode-first"
        answer = asyncio.run(traffic.chat(world.proxy_url, world.model, "layer by layer"))
        assert answer["choices"][0]["message"]["content"]
    finally:
        stopped = runner.invoke(cli, ["stop", "-c", str(world.spec_path)])
    assert stopped.exit_code == 0, stopped.output
