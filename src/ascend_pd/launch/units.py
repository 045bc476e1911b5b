"""What launch starts: one unit per (instance, host) plus the proxy, with its files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

UnitRole = Literal["prefill", "decode", "proxy"]

#: launch writes this line before every start, so a log can be cut to the latest run.
START_MARKER: Final[str] = "=== ascend-pd start "

VLLM_READY: Final[str] = "Application startup complete."


@dataclass(frozen=True)
class Unit:
    """One long-running process on one host.

    Attributes:
        name: ``<instance>@<host>`` (the proxy: ``proxy@<host>``); names pid and log files.
        host: spec host name (runner key).
        address: where its HTTP port is reached from this machine.
        role: prefill, decode or proxy.
        instance: spec instance name ("proxy" for the proxy).
        port: HTTP port, or None for a headless DP host (no API server).
        files: file name -> (content, mode) written into the host's deploy dir first.
        script: the file (in ``files``) that runs the process in the foreground.
    """

    name: str
    host: str
    address: str
    role: UnitRole
    instance: str
    port: int | None
    files: dict[str, tuple[str, int]] = field(default_factory=dict, compare=False)
    script: str = ""
    #: log line that proves the server is up (vLLM prints it once uvicorn listens)
    ready_marker: str | None = VLLM_READY
    #: docker container name (runtime: docker), removed by ``stop`` if SIGKILL was needed
    container: str | None = None

    @property
    def serves_api(self) -> bool:
        return self.port is not None


@dataclass(frozen=True)
class StateLayout:
    """Where a host keeps ascend-pd's files (under the spec's state_dir)."""

    root: str

    @property
    def deploy(self) -> str:
        return f"{self.root}/deploy"

    @property
    def run(self) -> str:
        return f"{self.root}/run"

    @property
    def logs(self) -> str:
        return f"{self.root}/logs"

    def pid_file(self, unit: Unit) -> str:
        return f"{self.run}/{unit.name}.pid"

    def log_file(self, unit: Unit) -> str:
        return self.log_of(unit.name)

    def log_of(self, name: str) -> str:
        """The log of unit ``<instance>@<host>``."""
        return f"{self.logs}/{name}.log"

    def script_path(self, unit: Unit) -> str:
        return f"{self.deploy}/{unit.script}"
