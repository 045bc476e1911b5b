"""The simulated ``nvidia-smi`` (pure): argv + a sim host -> what it prints and its exit.

Layouts follow the captures in tests/data/nvidia-smi (R530+ summary table, 89 columns;
``--query-gpu`` CSV joined by ``", "`` with units unless ``nounits``; the NVML start-up
failure on stdout with exit 18; exit 9 without a driver). Only what ascend-pd reads is
simulated: the summary, ``-L``, and ``--query-gpu`` with the fields in :data:`FIELDS`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from ascend_pd.sim.cluster import SimGpus, SimHost
from ascend_pd.sim.hccn_core import SimReply

#: the message and exit of nvidia-smi on a host without a loaded NVIDIA driver
NO_DRIVER: Final[str] = ("NVIDIA-SMI has failed because it couldn't communicate with the "
                         "NVIDIA driver. Make sure that the latest NVIDIA driver is installed "
                         "and running.\n\n")
USAGE_ERROR: Final[str] = ("Invalid combination of input arguments. Please run 'nvidia-smi -h' "
                           "for help.\n\n")
_RULE: Final[str] = "+" + "-" * 89 + "+"
_GRID: Final[str] = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"
_COLUMNS: Final[tuple[str, ...]] = (
    "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
    "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
    "|                                         |                        |               MIG M. |",
    "|=========================================+========================+======================|",
)
_PROCESSES: Final[tuple[str, ...]] = (
    _RULE,
    "| Processes:" + " " * 78 + "|",
    "|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |",
    "|        ID   ID                                                               Usage      |",
    "|" + "=" * 89 + "|",
    "|  No running processes found" + " " * 61 + "|",
    _RULE,
)


@dataclass(frozen=True)
class SimGpu:
    """One GPU NVML enumerates: its index now, and the slot it sits in (stable identity)."""

    index: int
    slot: int
    name: str
    uuid: str
    bus_id: str
    memory_mib: int


def visible_gpus(host: SimHost) -> list[SimGpu]:
    """The GPUs nvidia-smi lists: every slot but the missing ones, renumbered from 0."""
    gpus = host.gpus
    if gpus is None:
        return []
    slots = [s for s in range(gpus.count) if s not in gpus.missing]
    return [SimGpu(i, s, gpus.model, gpu_uuid(host.name, s),
                   f"00000000:{(0x18 + 0x10 * s) % 0x100:02X}:00.0", gpus.memory_mib)
            for i, s in enumerate(slots)]


def gpu_uuid(host: str, slot: int) -> str:
    """A stable, UUID-shaped ``GPU-…`` id per (host, slot), like NVML's."""
    raw = hashlib.sha256(f"{host}/{slot}".encode()).hexdigest()
    return f"GPU-{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"


def _summary(host: SimHost, gpus: SimGpus, now: float | None) -> str:
    stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(now))
    lines = [stamp, _RULE,
             f"| NVIDIA-SMI {gpus.driver_version:<23}Driver Version: {gpus.driver_version:<15}"
             f"CUDA Version: {gpus.cuda_version:<9}|",
             _GRID, *_COLUMNS]
    for gpu in visible_gpus(host):
        power = f"{gpus.power_cap_w // 6}W"
        lines += [
            f"|{gpu.index:>4}  {gpu.name:<31}On  |{gpu.bus_id:>19} Off |{'0':>21} |",
            f"| N/A  {'34C':>4}  {'P0':>4}{power:>16} / {f'{gpus.power_cap_w}W':>5} |"
            f"{'0MiB':>11} / {f'{gpu.memory_mib}MiB':>9} |{'0%':>8}{'Default':>13} |",
            f"|{'':41}|{'':24}|{'Disabled':>21} |",
            _GRID,
        ]
    lines += ["", *_PROCESSES]
    return "\n".join(lines) + "\n"


def _field_value(name: str, gpu: SimGpu, gpus: SimGpus, count: int,
                 units: bool) -> str | None:
    values: dict[str, Callable[[], str]] = {
        "index": lambda: str(gpu.index),
        "name": lambda: gpu.name, "gpu_name": lambda: gpu.name,
        "uuid": lambda: gpu.uuid, "gpu_uuid": lambda: gpu.uuid,
        "memory.total": lambda: f"{gpu.memory_mib} MiB" if units else str(gpu.memory_mib),
        "driver_version": lambda: gpus.driver_version,
        "pci.bus_id": lambda: gpu.bus_id, "gpu_bus_id": lambda: gpu.bus_id,
        "count": lambda: str(count),
    }
    get = values.get(name)
    return get() if get else None


#: the --query-gpu fields the stand-in answers
FIELDS: Final[tuple[str, ...]] = ("index", "name", "gpu_name", "uuid", "gpu_uuid",
                                  "memory.total", "driver_version", "pci.bus_id",
                                  "gpu_bus_id", "count")
_HEADERS: Final[dict[str, str]] = {"memory.total": "memory.total [MiB]"}


def _query(host: SimHost, gpus: SimGpus, fields: list[str], fmt: list[str]) -> SimReply:
    for name in fields:
        if name not in FIELDS:
            return SimReply(2, stdout=f'Field "{name}" is not a valid field to query.\n\n')
    shown = visible_gpus(host)
    units = "nounits" not in fmt
    lines = [] if "noheader" in fmt else [", ".join(
        _HEADERS.get(f, f) if units else f for f in fields)]
    for gpu in shown:
        lines.append(", ".join(_field_value(f, gpu, gpus, len(shown), units) or "[N/A]"
                               for f in fields))
    return SimReply(0, stdout="".join(line + "\n" for line in lines))


def simulate_nvidia_smi(argv: Sequence[str], host: SimHost, *,
                        now: float | None = None) -> SimReply:
    """What ``nvidia-smi argv[1:]`` prints on ``host`` (argv[0] is the program)."""
    gpus = host.gpus
    if gpus is None:
        return SimReply(9, stdout=NO_DRIVER)
    if gpus.nvml_library_version:
        return SimReply(18, stdout="Failed to initialize NVML: Driver/library version mismatch\n"
                                   f"NVML library version: {gpus.nvml_library_version}\n")
    args = list(argv[1:])
    if not args:
        return SimReply(0, stdout=_summary(host, gpus, now))
    if args in (["-L"], ["--list-gpus"]):
        return SimReply(0, stdout="".join(f"GPU {g.index}: {g.name} (UUID: {g.uuid})\n"
                                          for g in visible_gpus(host)))
    query = [a for a in args if a.startswith("--query-gpu=")]
    fmt = [a for a in args if a.startswith("--format=")]
    if len(query) == 1 and len(fmt) == 1 and len(args) == 2:
        formats = fmt[0].removeprefix("--format=").split(",")
        if "csv" in formats:
            fields = [f.strip() for f in query[0].removeprefix("--query-gpu=").split(",")]
            return _query(host, gpus, fields, formats)
    return SimReply(2, stdout=USAGE_ERROR)
