"""A simulated ``platform: cuda`` host as a directory tree, for the doctor probe.

Like :mod:`ascend_pd.doctor.simroot` (same conventions: ``ASCEND_PD_SYSROOT``, fake
``*.dist-info`` on PYTHONPATH, stand-ins first on PATH), but the GPUs come from the sim
cluster file: ``sim-bin/nvidia-smi`` is the stand-in (``ascend_pd.sim.nvsmi_core``) answering
as ``host`` of ``cluster``, so a missing GPU, an old driver or an NVML mismatch is written
there (``SimGpus``). Package and host faults are the knobs of :data:`CUDA_FAULTS`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from ascend_pd.doctor.simroot import SimHost, dist_info, sysroot_env, write_host_tree
from ascend_pd.errors import UsageError
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.sim.entry import CLUSTER_ENV, HOST_ENV
from ascend_pd.sim.install import install_tools

#: fault knob -> the doctor check it breaks (GPU faults live in the sim cluster file)
CUDA_FAULTS: Final[dict[str, str]] = {
    "vllm_torch_mismatch": "vllm-torch",
    "nixl_missing": "python-packages",
    "no_config_json": "model-config",
    "nic_without_address": "host-ip-on-nic",
    "low_disk": "disk",
}
#: a consistent simulated install: vllm's metadata pins the torch installed next to it, and
#: the CUDA runtime package matches torch's build (not a claim about any vLLM release's pins)
HEALTHY: Final[dict[str, str]] = {"torch": "2.9.0+cu128", "vllm": "0.12.0", "nixl": "0.6.1",
                                  "nvidia-cuda-runtime-cu12": "12.8.90"}


def build_cuda_sysroot(
    dest: str | Path,
    *,
    cluster: str | Path,
    host: str,
    faults: Iterable[str] = (),
    model_path: str = "/models/Qwen3-8B",
    nics: Mapping[str, Iterable[str]] | None = None,
    state_dir: str = "/var/lib/ascend-pd",
    versions: Mapping[str, str] | None = None,
) -> SimHost:
    """Write a simulated cuda host under ``dest`` whose nvidia-smi is ``host`` of ``cluster``.

    Args:
        dest: the sysroot directory (created).
        cluster: the sim cluster file (its ``hosts[].gpus`` describe the GPUs and driver).
        host: this host's name in the cluster file.
        faults: knobs from :data:`CUDA_FAULTS`.
        model_path: where the model lives (as on the real host).
        nics: NIC -> addresses with prefix (default ``{"eth0": ["192.0.2.11/24"]}``).
        state_dir: the spec's state_dir (created, for ``df``).
        versions: override package versions (distribution name -> version).

    Raises:
        UsageError: an unknown fault name.
    """
    wanted = set(faults)
    unknown = sorted(wanted - CUDA_FAULTS.keys())
    if unknown:
        raise UsageError(f"unknown cuda sysroot fault(s): {', '.join(unknown)}",
                         hint=f"use: {', '.join(CUDA_FAULTS)}")
    root = Path(dest).resolve()
    pkgs = dict(HEALTHY) | dict(versions or {})
    torch_pin = pkgs["torch"].split("+")[0]
    if "vllm_torch_mismatch" in wanted:
        # a torch one minor release away from the one vllm pins (a later `pip install torch`)
        major, minor, *_ = torch_pin.split(".")
        pkgs["torch"] = f"{major}.{int(minor) - 1}.0+cu128"
    if "nixl_missing" in wanted:
        pkgs.pop("nixl")
    site = root / "usr/local/lib/python3/site-packages"
    site.mkdir(parents=True, exist_ok=True)
    for name, version in pkgs.items():
        dist_info(site, name, version,
                  requires=[f"torch=={torch_pin}", "transformers>=4.56.0"] if name == "vllm"
                  else ())
    model = root / model_path.lstrip("/")
    model.mkdir(parents=True, exist_ok=True)
    if "no_config_json" not in wanted:
        atomic_write_text(model / "config.json", json.dumps(
            {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
             "torch_dtype": "bfloat16"}, indent=2) + "\n")
    bin_dir = write_host_tree(root, state_dir=state_dir, nics=nics, faults=wanted)
    install_tools(bin_dir, cluster=cluster, host=host)
    env = sysroot_env(root, bin_dir, site) | {CLUSTER_ENV: str(Path(cluster).resolve()),
                                              HOST_ENV: host}
    return SimHost(root, env)
