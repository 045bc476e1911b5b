"""The proxy on uvloop: vLLM hosts have it installed (uvicorn[standard] pulls it in), and
``ascend-pd proxy`` runs on it wherever it is importable. Its transports implement asyncio's
interface without subclassing ``asyncio.Transport``; an isinstance assert once broke every
connection there (a 200 on asyncio, a connection reset on uvloop)."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.proxy.conftest import MODEL, wait_for
from tests.proxy.test_workers import _free_port

uvloop = pytest.importorskip("uvloop", reason="uvloop is in the dev extra; this checks the "
                             "proxy on the loop vLLM hosts have")


def test_proxy_serves_completions_and_streams_on_uvloop(cluster, tmp_path):
    port = _free_port()
    argv = [sys.executable, "-m", "ascend_pd", "proxy", "--port", str(port),
            "--health-interval", "0.2"]
    for p in cluster["prefill"]:
        argv += ["--prefill", p.address]
    for d in cluster["decode"]:
        argv += ["--decode", d.address]
    log = tmp_path / "proxy.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return httpx.get(url + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=30, what="the proxy healthy")
        assert "loop uvloop" in log.read_text()
        body = {"model": MODEL, "prompt": "why is the link down", "max_tokens": 4}
        resp = httpx.post(url + "/v1/completions", json=body, timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.json()["usage"]["completion_tokens"] == 4
        with httpx.stream("POST", url + "/v1/completions", json={**body, "stream": True},
                          timeout=10) as streamed:
            assert streamed.read().decode().endswith("data: [DONE]\n\n")
    finally:
        proc.terminate()
        proc.wait(10)
