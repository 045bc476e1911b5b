"""nvidia-smi argv: the GPU identity query doctor runs on ``platform: cuda`` hosts."""

from __future__ import annotations

from typing import Final

#: what doctor asks of every GPU (``nvidia-smi --help-query-gpu`` names them); the doctor
#: probe (doctor/probe.sh) receives this list and runs the same query on the host
QUERY_FIELDS: Final[tuple[str, ...]] = ("index", "name", "uuid", "memory.total",
                                        "driver_version")


def query_gpus(nvidia_smi: str = "nvidia-smi") -> tuple[str, ...]:
    """``nvidia-smi --query-gpu=index,name,uuid,memory.total,driver_version
    --format=csv,noheader``: one line per GPU NVML enumerates."""
    return (nvidia_smi, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader")
