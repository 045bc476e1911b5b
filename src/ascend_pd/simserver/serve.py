"""Run a simulated vLLM server in this process, printing vLLM's startup lines on stdout.

The launcher waits for ``Application startup complete.``; it is printed last, only once the
socket is listening, as uvicorn does. Everything else vLLM would log (``Delaying free``,
``Force freed expired request``, ``Invalid KVTransferParams``) goes to stdout in vLLM's
``LEVEL mm-dd HH:MM:SS [file.py:line] message`` format.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from ascend_pd.simserver.app import SimServer
from ascend_pd.simserver.config import BAD_ANSWERS, SimServerConfig

VLLM_VERSION = "0.11.0"


def _setup_logging() -> logging.Logger:
    logger = logging.getLogger("ascend_pd.simserver")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(
        "%(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s", "%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _serve(config: SimServerConfig, log: logging.Logger) -> int:
    server = SimServer(config)
    log.info("vLLM API server version %s (ascend-pd simulator, role %s)",
             VLLM_VERSION, config.role)
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=4096)
    try:
        await site.start()
    except OSError as exc:
        print(f"ERROR:    [Errno {exc.errno}] error while attempting to bind on address "
              f"({config.host!r}, {config.port}): {exc.strerror}", flush=True)
        await runner.cleanup()
        return 1
    addresses = runner.addresses
    server.port = int(addresses[0][1]) if addresses else config.port
    log.info("Starting vLLM API server 0 on %s", _url(config.host, server.port))
    log.info("Available routes are: /health, /metrics, /v1/models, /v1/completions, "
             "/v1/chat/completions")
    print(f"INFO:     Started server process [{os.getpid()}]")
    print("INFO:     Waiting for application startup.")
    print("INFO:     Application startup complete.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("INFO:     Shutting down", flush=True)
    await runner.cleanup()
    print(f"INFO:     Finished server process [{os.getpid()}]", flush=True)
    return 0


def run(config: SimServerConfig) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code (1 when the bind fails)."""
    return asyncio.run(_serve(config, _setup_logging()))


def parser() -> argparse.ArgumentParser:
    """The command line the rendered launch scripts exec (``python -m ascend_pd.simserver``)."""
    p = argparse.ArgumentParser(prog="python -m ascend_pd.simserver",
                                description="Simulated vLLM-Ascend P/D instance.")
    p.add_argument("--role", choices=["prefill", "decode"], required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", required=True, help="served model name")
    p.add_argument("--engine-id", default=None)
    p.add_argument("--prefill-ms-per-1k", type=float, default=20.0)
    p.add_argument("--decode-ms-per-token", type=float, default=2.0)
    p.add_argument("--kv-abort-timeout-s", type=float, default=480.0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--crash-after", type=int, default=None)
    p.add_argument("--hang", action="store_true")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--recompute-rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-model-len", type=int, default=32768)
    p.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY on /v1")
    p.add_argument("--bad-answer", choices=BAD_ANSWERS, default=None,
                   help="answer completions broken on purpose")
    p.add_argument("--layerwise", action="store_true",
                   help="MooncakeLayerwiseConnector: decode first, via the proxy's metaserver")
    p.add_argument("--no-kv-params", action="store_true",
                   help="prefill: answer without kv_transfer_params (no KV connector, or "
                        "the storage connector); decode: accept requests without them")
    p.add_argument("--prefix-cache-blocks", type=int, default=4096)
    p.add_argument("--compute-lanes", type=int, default=0)
    return p


def config_from_args(args: argparse.Namespace) -> SimServerConfig:
    """Build the config from parsed arguments (shared with the click command)."""
    values = {k: v for k, v in vars(args).items() if v is not None}
    return SimServerConfig(**values)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ascend_pd.simserver``."""
    return run(config_from_args(parser().parse_args(argv)))
