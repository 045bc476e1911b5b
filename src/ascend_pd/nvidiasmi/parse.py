"""Pure parsers of nvidia-smi output (tested on the captures in tests/data/nvidia-smi).

Two outputs are read:

* ``--query-gpu=<fields> --format=csv[,noheader]``: one line per GPU, fields joined by
  ``", "``; a header line ``index, name, memory.total [MiB]`` unless ``noheader``; values
  carry their unit (``81920 MiB``) unless ``nounits``; ``[N/A]`` / ``N/A`` when unknown.
* the summary table's header line: ``Driver Version: 580.126.09     CUDA Version: 13.0``
  (R610 prints ``KMD Version: … CUDA UMD Version: …``; R390 prints no CUDA field; Jetson
  prints ``CUDA Version: N/A``). ``nvidia-smi -q`` has the same fields as ``key : value``.

The CUDA version nvidia-smi shows is the newest CUDA the *driver* supports, not the CUDA
runtime an application was built with (which is what it is compared against).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from packaging.version import InvalidVersion, Version

from ascend_pd.errors import ParseError
from ascend_pd.nvidiasmi.commands import QUERY_FIELDS

_DRIVER: Final = re.compile(r"(?:Driver|KMD) Version\s*:\s*(\S+)")
_CUDA: Final = re.compile(r"CUDA (?:UMD )?Version\s*:\s*(\S+)")
_NVML: Final = re.compile(r"^(Failed to initialize NVML: .*)$", re.MULTILINE)
_UNKNOWN: Final[frozenset[str]] = frozenset({"N/A", "[N/A]", "[Not Supported]",
                                              "Not Supported", ""})


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``--query-gpu`` reported it (fields not asked for are None)."""

    index: int
    name: str
    uuid: str | None = None
    memory_mib: int | None = None
    driver_version: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "name": self.name, "uuid": self.uuid,
                "memory_mib": self.memory_mib, "driver_version": self.driver_version}


@dataclass(frozen=True)
class SmiVersions:
    """The driver version and the newest CUDA it supports (None: not shown, or N/A)."""

    driver: str
    cuda: str | None


def _memory(value: str, line: str) -> int | None:
    if value in _UNKNOWN:
        return None
    number = value.removesuffix(" MiB").strip()
    if not number.isdigit():
        raise ParseError(f"unexpected memory.total {value!r} in nvidia-smi output", line=line)
    return int(number)


def _header_names(line: str) -> list[str]:
    # "memory.total [MiB]" -> "memory.total"
    return [part.split(" [", 1)[0].strip() for part in line.split(",")]


def parse_gpu_csv(text: str, fields: Sequence[str] = QUERY_FIELDS) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=<fields> --format=csv[,noheader]`` output.

    ``fields`` must name ``index`` and ``name``; a header line listing exactly ``fields``
    is skipped.

    Raises:
        ParseError: a line with another number of fields or a non-numeric index (a header
            for other fields, an error message), quoting the line.
    """
    wanted = list(fields)
    if "index" not in wanted or "name" not in wanted:
        raise ValueError("fields must include index and name")
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and _header_names(lines[0]) == wanted:
        lines = lines[1:]  # --format=csv without noheader
    gpus: list[Gpu] = []
    for line in lines:
        values = [v.strip() for v in line.split(", ")]
        if len(values) != len(wanted):
            raise ParseError(f"expected {len(wanted)} fields ({', '.join(wanted)}) in an "
                             "nvidia-smi --query-gpu line", line=line,
                             hint="nvidia-smi failed or printed a message instead of CSV")
        row = dict(zip(wanted, values, strict=True))
        if not row["index"].isdigit():
            raise ParseError("nvidia-smi --query-gpu: the index is not a number", line=line)
        gpus.append(Gpu(
            index=int(row["index"]), name=row["name"],
            uuid=row.get("uuid") if row.get("uuid") not in _UNKNOWN else None,
            memory_mib=_memory(row["memory.total"], line) if "memory.total" in row else None,
            driver_version=row.get("driver_version") or None))
    return gpus


def _version_or_none(text: str | None) -> str | None:
    if text is None or text in _UNKNOWN:
        return None
    try:
        Version(text)
    except InvalidVersion:
        return None  # "Not Found" (-q without a CUDA driver), "N/A" (Jetson)
    return text


def parse_versions(text: str) -> SmiVersions:
    """Driver and CUDA version from ``nvidia-smi`` (summary table) or ``nvidia-smi -q``.

    Raises:
        ParseError: no driver version anywhere (quoting the first line: often the NVML
            error message).
    """
    driver = _DRIVER.search(text)
    if driver is None:
        first = next((line for line in text.splitlines() if line.strip()), "<empty output>")
        raise ParseError("no driver version in the nvidia-smi output", line=first,
                         hint=nvml_hint(text))
    cuda = _CUDA.search(text)
    return SmiVersions(driver.group(1), _version_or_none(cuda.group(1) if cuda else None))


def nvml_error(text: str) -> str | None:
    """``Failed to initialize NVML: …`` when nvidia-smi printed it, else None."""
    found = _NVML.search(text)
    return found.group(1).strip() if found else None


def nvml_hint(text: str) -> str | None:
    """The fix for a known NVML start-up failure in ``text`` (None: none recognised)."""
    error = nvml_error(text) or ""
    if "Driver/library version mismatch" in error:
        # The kernel module still loaded is older than the user-space library just
        # installed: a driver upgrade without a reboot (or unattended-upgrades).
        return ("the loaded NVIDIA kernel module is not the installed driver's: reboot (or "
                "unload and reload the nvidia modules) after a driver upgrade")
    if error:
        return "check that the NVIDIA driver is installed and loaded (`lsmod | grep nvidia`)"
    return None
