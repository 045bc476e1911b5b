"""``ascend-pd proxy --workers 2``: two processes on one port, one /metrics over both."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx

from ascend_pd.proxy import BackendAddress, ProxyConfig
from ascend_pd.proxy.workers import merge_metrics, worker_config
from tests.proxy.conftest import MODEL, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _total(text: str, name: str) -> tuple[float, set[str]]:
    total, workers = 0.0, set()
    for line in text.splitlines():
        if line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            workers.add(line.split('worker="', 1)[1].split('"', 1)[0])
    return total, workers


def test_two_workers_share_the_port_and_metrics_add_up(cluster):
    port = _free_port()
    argv = [sys.executable, "-m", "ascend_pd", "proxy", "--port", str(port), "--workers", "2",
            "--health-interval", "0.2", "--max-in-flight", "64"]
    for p in cluster["prefill"]:
        argv += ["--prefill", p.address]
    for d in cluster["decode"]:
        argv += ["--decode", d.address]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return httpx.get(url + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=30, what="workers listening")
        for _ in range(30):  # a new connection each: the kernel spreads them
            resp = httpx.post(url + "/v1/completions", timeout=10,
                              json={"model": MODEL, "prompt": "hi", "max_tokens": 2})
            assert resp.status_code == 200
        seen = {httpx.get(url + "/health", timeout=5).json()["worker"] for _ in range(30)}
        assert seen == {0, 1}
        text = httpx.get(url + "/metrics", timeout=10).text
        total, workers = _total(text, "ascend_pd_proxy_client_requests_total")
        assert total == 30 and workers == {"0", "1"}
        assert text.count("# TYPE ascend_pd_proxy_client_requests_total ") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == 0
    time.sleep(0.2)
    # Every worker exited with the parent: nothing listens on the port any more.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_limits_are_split_across_workers_and_metrics_merge_by_family():
    cfg = ProxyConfig(prefill=(BackendAddress("a", 1),), decode=(BackendAddress("b", 2),),
                      workers=4, max_in_flight=10, queue_size=100, max_connections=4096)
    one = worker_config(cfg, 8000)
    assert (one.workers, one.max_in_flight, one.queue_size, one.max_connections) == (
        1, 2, 25, 1024)
    assert worker_config(ProxyConfig(prefill=cfg.prefill, decode=cfg.decode, workers=4,
                                     max_in_flight=0), 1).max_in_flight == 0  # no limit
    merged = merge_metrics({
        0: "# HELP x X.\n# TYPE x counter\nx{a=\"1\"} 2\n# TYPE g gauge\ng 5\n",
        1: "# HELP x X.\n# TYPE x counter\nx{a=\"1\"} 3\n# TYPE g gauge\ng 7\n",
    })
    assert merged == ('# HELP x X.\n# TYPE x counter\nx{worker="0",a="1"} 2\n'
                      'x{worker="1",a="1"} 3\n# TYPE g gauge\ng{worker="0"} 5\n'
                      'g{worker="1"} 7\n')
