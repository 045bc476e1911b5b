"""vllm-router (PyPI ``vllm-router``, Rust) as a contender: installed into its own cached venv.

It is what a user would pick instead of this proxy, so the benchmark runs it in the same run
against the same simulators. It is never a dependency of ascend-pd: ``ensure_router()``
creates ``$ASCEND_PD_BENCH_CACHE/vllm-router`` (default ``~/.cache/ascend-pd-bench``) once
with ``python -m venv`` + ``pip install vllm-router==VERSION`` and reuses it afterwards.

Its PD mode (``--vllm-pd-disaggregation``, NIXL-style: prefill with
``kv_transfer_params.do_remote_decode``, then decode with what prefill returned) works
against the simulators unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

VERSION = "0.1.17"


def cache_dir() -> Path:
    return Path(os.environ.get("ASCEND_PD_BENCH_CACHE", "~/.cache/ascend-pd-bench")).expanduser()


def ensure_router() -> Path:
    """The ``vllm-router`` executable, installed on first use (needs PyPI once)."""
    venv = cache_dir() / "vllm-router"
    exe = venv / "bin" / "vllm-router"
    if exe.exists():
        return exe
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing vllm-router {VERSION} into {venv} (once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"vllm-router=={VERSION}"],
                   check=True, timeout=900)
    return exe


def router_argv(exe: Path, port: int, prefills: Sequence[str], decodes: Sequence[str], *,
                prefill_policy: str = "round_robin", decode_policy: str = "round_robin",
                max_concurrent: int = 8192, queue_size: int = 8192,
                queue_timeout_s: int = 60, prometheus_port: int = 29000) -> list[str]:
    """Its PD mode over ``host:port`` backends; limits wide open unless given.

    The defaults (``--max-concurrent-requests`` and a 100-deep queue) would throttle the
    throughput phases, so they are raised; the overload phase sets them on purpose. Its
    Prometheus exporter stays on (ours exports /metrics too) but on a port of its own: the
    fixed default (29000) makes a second router -- or a leftover one -- panic at start.
    """
    argv = [str(exe), "--vllm-pd-disaggregation", "--kv-connector", "nixl",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--prefill-policy", prefill_policy, "--decode-policy", decode_policy,
            "--policy", decode_policy,
            "--max-concurrent-requests", str(max_concurrent), "--queue-size", str(queue_size),
            "--queue-timeout-secs", str(queue_timeout_s),
            "--prometheus-port", str(prometheus_port)]
    for p in prefills:
        argv += ["--prefill", f"http://{p}"]
    for d in decodes:
        argv += ["--decode", f"http://{d}"]
    return argv
