"""Real processes for the real-vLLM tier: vLLM API servers from the cached venv
(scripts/real-vllm-env) and our proxy through its CLI.

Every process runs in its own session so that stopping it takes its children too (vLLM forks an
engine core process); output goes to a log file whose tail is quoted when a start fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MODEL = "tiny"
#: Small on purpose: 2 shared cores. Long enough for the mid-stream kill to land mid-stream.
MAX_MODEL_LEN = 1024
START_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class RealEnv:
    """The cached environment: interpreter of the real-vLLM venv and the tiny model."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    @property
    def model(self) -> Path:
        return self.root / "model"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nixl_kv_config() -> str:
    # One role for both sides: NixlConnector decides per request from kv_transfer_params.
    return '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'


def cpu_env(env_root: RealEnv) -> dict[str, str]:
    """Environment of every vLLM server: offline, small KV cache, no core pinning."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_", "HF_"))}
    env.update({
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        # GiB of KV cache per server; the tiny model needs a sliver of it.
        "VLLM_CPU_KVCACHE_SPACE": "1",
        # Several servers share 2 cores with other work: pinning threads to cores would stack
        # them on the same cores and starve each other.
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "OMP_NUM_THREADS": "1",
        "VLLM_LOGGING_LEVEL": "INFO",
        "PATH": f"{env_root.python.parent}:{env.get('PATH', '')}",
    })
    return env


@dataclass
class Proc:
    """A child process in its own session, logging to ``log``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, path: str = "/health", timeout: float = START_TIMEOUT_S) -> Proc:
        """Poll ``path`` until 200; fail with the log's tail when the process dies or stalls."""
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n"
                                   f"{self.tail()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the whole session (the API server and its engine core)."""
        if self.popen is not None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait(timeout)
        # The engine core may outlive the API server by a moment: make sure the group is gone.
        self.kill(signal.SIGKILL)


def vllm_server(env_root: RealEnv, name: str, workdir: Path, *, pd: bool) -> Proc:
    """A vLLM OpenAI server on the tiny model; ``pd`` adds the NixlConnector (kv_both)."""
    port = free_port()
    # `vllm serve` of vllm-cpu 0.32 fails with PackageNotFoundError: run the module instead.
    argv = [str(env_root.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(env_root.model), "--served-model-name", MODEL,
            "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", str(MAX_MODEL_LEN), "--max-num-seqs", "8",
            "--dtype", "float32", "--seed", "0", "--enforce-eager",
            "--disable-log-stats"]
    env = cpu_env(env_root)
    if pd:
        argv += ["--kv-transfer-config", nixl_kv_config()]
        # Each instance its own NIXL side channel (handshake) port.
        env["VLLM_NIXL_SIDE_CHANNEL_HOST"] = "127.0.0.1"
        env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = str(free_port())
    return Proc(name, argv, env, workdir / f"{name}.log", port)


def proxy_process(prefill: Proc, decode: Proc, workdir: Path) -> Proc:
    """``ascend-pd proxy`` (this checkout's CLI) in front of one prefill and one decode."""
    port = free_port()
    argv = [sys.executable, "-m", "ascend_pd", "proxy", "--host", "127.0.0.1",
            "--port", str(port), "--prefill", prefill.address, "--decode", decode.address,
            "--health-interval", "1"]
    return Proc("proxy", argv, dict(os.environ), workdir / "proxy.log", port)
