"""GPU faults of a simulated ``platform: cuda`` host (``ascend-pd sim fault --kind gpu-…``).

* ``gpu-missing --device N``: slot N falls off the bus; nvidia-smi lists the other GPUs,
  numbered from 0 again.
* ``nvml-mismatch [--value 580.126]``: a driver upgrade without a reboot; every nvidia-smi
  call fails with ``Driver/library version mismatch`` (exit 18).
* ``gpu-driver --value DRIVER/CUDA`` (``470.256.02/11.4``): an older driver branch; the
  original is kept in ``gpus.saved`` and ``--clear`` restores it.
"""

from __future__ import annotations

from typing import Final

from ascend_pd.errors import UsageError
from ascend_pd.sim.cluster import SimGpus, SimHost

GPU_FAULT_KINDS: Final[tuple[str, ...]] = ("gpu-missing", "nvml-mismatch", "gpu-driver")


def apply_gpu_fault(host: SimHost, kind: str, *, device: int | None, value: str | None,
                    clear: bool) -> list[int]:
    """Change ``host.gpus`` in place; the GPU slots touched.

    Raises:
        UsageError: the host has no ``gpus:``, or the slot / value does not fit the kind.
    """
    gpus = host.gpus
    if gpus is None:
        raise UsageError(f"host {host.name} has no gpus: section",
                         hint="GPU faults are for platform cuda hosts (hosts[].gpus)")
    if kind == "gpu-missing":
        if device is None or not 0 <= device < gpus.count:
            raise UsageError("gpu-missing needs --device SLOT",
                             hint=f"a GPU slot of {host.name}: 0..{gpus.count - 1}")
        keep = [s for s in gpus.missing if s != device]
        gpus.missing = keep if clear else sorted([*keep, device])
        return [device]
    if kind == "nvml-mismatch":
        gpus.nvml_library_version = None if clear else (
            value or _next_branch(gpus))
        return []
    if clear:
        for key, old in gpus.saved.items():
            setattr(gpus, key, old)
        gpus.saved = {}
        return []
    driver, _, cuda = (value or "").partition("/")
    if not driver or not cuda:
        raise UsageError("gpu-driver needs --value DRIVER/CUDA", hint="e.g. 470.256.02/11.4")
    for key, new in (("driver_version", driver), ("cuda_version", cuda)):
        gpus.saved.setdefault(key, getattr(gpus, key))
        setattr(gpus, key, new)
    return []


def _next_branch(gpus: SimGpus) -> str:
    # The user-space library is newer than the loaded module: "<major+5>.<minor>".
    major, _, rest = gpus.driver_version.partition(".")
    return f"{int(major) + 5}.{rest.split('.')[0]}" if major.isdigit() else "0.0"
