"""The vllm-router command line the plan renders (``proxy.kind: vllm-router``) runs the real
router (the vllm-router 0.1.17 package, a dev dependency) in PD mode in front of simulated
vLLM servers: it starts with those flags, answers ``/health`` (what launch and status probe),
and a completion goes prefill then decode with P's kv_transfer_params."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ascend_pd.proxy.config import BackendAddress, ProxyConfig
from ascend_pd.render.router import router_args
from ascend_pd.spec import parse_spec
from tests.proxy.conftest import MODEL, sim_state, wait_for

SPEC = """
version: 1
platform: cuda
hosts:
  - {name: node, address: 127.0.0.1, devices: [0, 1]}
model: {path: /models/m, served_name: sim-model, attention: gqa}
connector: {type: nixl, vllm_version: "0.30.0"}
prefill: [{name: p0, hosts: [node], devices: [0], port: 8100}]
decode: [{name: d0, hosts: [node], devices: [1], port: 8200}]
proxy: {host: node, port: PORT, bind: 127.0.0.1, kind: vllm-router}
"""


def _router() -> str:
    path = shutil.which("vllm-router", path=str(Path(sys.executable).parent))
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("vllm-router is a dev dependency (pip install -e '.[dev]')")
        pytest.skip("vllm-router is not installed in this venv (pip install -e '.[dev]')")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_rendered_router_argv_serves_pd_over_simulated_vllm(sims: Any, tmp_path: Path) -> None:
    router = _router()
    prefill, decode = sims("prefill"), sims("decode")
    port = _free_port()
    spec = parse_spec(SPEC.replace("PORT", str(port)))
    config = ProxyConfig(prefill=(BackendAddress.parse(prefill.address),),
                         decode=(BackendAddress.parse(decode.address),), host="127.0.0.1",
                         port=port, policy_prefill="cache_aware")
    args = router_args(spec, config)
    # Only for isolation here: the rendered line keeps the router's default metrics port.
    args += ["--prometheus-port", str(_free_port())]
    log = (tmp_path / "router.log").open("w")
    proc = subprocess.Popen([router, *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(healthy, timeout=60, what="vllm-router /health")
        resp = httpx.post(url + "/v1/completions", timeout=30,
                          json={"model": MODEL, "prompt": "why is the link down",
                                "max_tokens": 8})
        assert resp.status_code == 200, resp.text
        assert resp.json()["choices"][0]["text"]
        # D took P's KV (a decode without valid kv_transfer_params answers 400).
        assert sim_state(prefill)["success"] >= 1
        assert sim_state(decode)["invalid_kv"] == 0
        assert sim_state(decode)["success"] >= 1
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
