"""Fixtures for the doctor tests: simulated hosts (sysroots) and specs that point at them."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import yaml

from ascend_pd.doctor.simroot import SimHost, build_sysroot


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's backend, spec or sysroot must never leak into a test.
    for var in ("ASCEND_PD_BACKEND", "ASCEND_PD_CONFIG", "ASCEND_PD_SYSROOT",
                "ASCEND_PD_PYTHON"):
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The release the simulated hosts run unless a test says otherwise (a Mooncake release that
#: the renderer on this branch accepts; the sysroot derives every version from its facts).
RELEASE = "0.23.0"


def write_spec(path: Path, host: SimHost, *, ports: Iterable[int], quantization: str = "ascend",
               runtime: str = "host", model_path: str = "/models/Qwen3-32B-W8A8",
               connector: str = "mooncake", version: str = RELEASE) -> Path:
    """A one-host 1P1D spec whose host commands see ``host``'s sysroot."""
    p_port, d_port = list(ports)
    host_entry: dict[str, object] = {
        "name": "node0", "address": "192.0.2.11", "nic": "eth0",
        "devices": list(range(8)), "env": host.env, "runtime": runtime,
    }
    if runtime == "docker":
        host_entry["docker"] = {"image": "quay.io/ascend/vllm-ascend:v0.11.0"}
    spec = {
        "version": 1, "name": "doctor-test", "hardware": "a2",
        "hosts": [host_entry],
        "model": {"path": model_path, "served_name": "qwen3", "quantization": quantization},
        "connector": {"type": connector, "vllm_ascend_version": version},
        "prefill": [{"name": "prefill-0", "hosts": ["node0"], "devices": [0, 1, 2, 3],
                     "tp": 4, "port": p_port}],
        "decode": [{"name": "decode-0", "hosts": ["node0"], "devices": [4, 5, 6, 7],
                    "tp": 4, "port": d_port}],
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


SimFactory = Callable[..., tuple[SimHost, Path]]


@pytest.fixture
def sim_spec(tmp_path: Path) -> SimFactory:
    """``sim_spec(faults=..., **spec_kw) -> (SimHost, spec path)`` with free planned ports."""

    def make(faults: Iterable[str] = (), ports: Iterable[int] | None = None,
             release: str = RELEASE, cann_version: str | None = None,
             sources: dict[str, Path] | None = None, **spec_kw: str) -> tuple[SimHost, Path]:
        host = build_sysroot(tmp_path / "root", faults=faults, release=release,
                             cann_version=cann_version, sources=sources)
        chosen = list(ports) if ports is not None else [free_port(), free_port()]
        return host, write_spec(tmp_path / "pd.yaml", host, ports=chosen, **spec_kw)

    return make
