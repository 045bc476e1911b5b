"""Start a simulated vLLM server as a child process and wait until it is really listening.

Tests and benchmarks use this to run the sim the way the launcher does: a separate process,
readiness from the ``Application startup complete.`` line, the port parsed from vLLM's
``Starting vLLM API server 0 on http://H:P`` line (so ``port=0`` works).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from types import TracebackType
from typing import Any

from ascend_pd.errors import LaunchError

_STARTING = re.compile(r"Starting vLLM API server \d+ on http://\[?([^\]\s]*)\]?:(\d+)")
READY_LINE = "Application startup complete."


class SimServerProcess:
    """A running ``python -m ascend_pd.simserver`` child.

    Args:
        role: ``prefill`` or ``decode``.
        model: served model name.
        host: listen address (loopback by default).
        port: 0 lets the OS pick; read it back from ``port``.
        **knobs: any other option, e.g. ``decode_ms_per_token=1``, ``hang=True``.
    """

    def __init__(self, role: str, *, model: str = "sim-model", host: str = "127.0.0.1",
                 port: int = 0, **knobs: Any) -> None:
        self.argv = [sys.executable, "-m", "ascend_pd.simserver", "--role", role,
                     "--host", host, "--port", str(port), "--model", model]
        for key, value in knobs.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                self.argv.append(flag)
            elif value is not None and value is not False:  # 0 is a value
                self.argv += [flag, str(value)]
        self.role = role
        self.host = host
        self.port = port
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._started = False
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``host:port`` as the proxy's ``--prefill``/``--decode`` options take it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            match = _STARTING.search(line)
            if match:
                self.port = int(match.group(2))
            if line.endswith(READY_LINE):
                self._started = True
                self._ready.set()
        self._ready.set()  # EOF: the process exited; start() reports it

    def start(self, timeout: float = 20.0) -> SimServerProcess:
        """Spawn and wait for the ready line; LaunchError when it dies or times out."""
        self._proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # EOF also sets _ready; only the ready line counts as started (the process may not
        # be reaped yet when its output ends, so poll() alone would race).
        if not self._ready.wait(timeout) or not self._started or self._proc.poll() is not None:
            tail = "\n".join(self.lines[-5:])
            self.stop()
            raise LaunchError(f"simulated {self.role} server did not start: {tail}",
                              hint="run the argv by hand: " + " ".join(self.argv))
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float) -> int | None:
        """Wait for the process to exit; its exit code, or None if still running."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL (a crashing engine: connections dropped, nothing cleaned up), then reap."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> SimServerProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
