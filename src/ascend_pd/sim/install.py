"""Write ``hccn_tool`` / ``npu-smi`` / ``nvidia-smi`` wrapper scripts that run the simulated
tools.

The scripts exec this interpreter by absolute path (``sys.executable``), so they work from
any PATH, over SSH and inside another network namespace, without activating a venv. They
run the thin client (``simd_client.py``, with ``-I -S``: no site, no package import) that
asks the resident simulator daemon; see ``ascend_pd.sim.simd_client`` for the numbers.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ascend_pd.fsutil import atomic_write_text
from ascend_pd.sim import simd_client
from ascend_pd.sim.entry import CLUSTER_ENV, HOST_ENV

TOOLS = simd_client.MODULES


def install_tools(
    dest_dir: str | Path, *, cluster: str | Path | None = None, host: str | None = None
) -> dict[str, Path]:
    """Write executable ``DEST/hccn_tool``, ``DEST/npu-smi`` and ``DEST/nvidia-smi``.

    Args:
        dest_dir: directory to write into (created if missing).
        cluster: optional default for ``ASCEND_PD_SIM_CLUSTER`` baked into the scripts
            (the environment still wins).
        host: optional default for ``ASCEND_PD_SIM_HOST``.

    Returns:
        ``{"hccn_tool": path, "npu-smi": path, "nvidia-smi": path}``.
    """
    dest = Path(dest_dir).expanduser()
    python = shlex.quote(str(Path(sys.executable).absolute()))
    defaults = ""
    if cluster is not None:
        value = shlex.quote(str(Path(cluster).expanduser().absolute()))
        defaults += f': "${{{CLUSTER_ENV}:={value}}}"; export {CLUSTER_ENV}\n'
    if host is not None:
        defaults += f': "${{{HOST_ENV}:={shlex.quote(host)}}}"; export {HOST_ENV}\n'
    client = shlex.quote(str(Path(simd_client.__file__).absolute()))
    written: dict[str, Path] = {}
    for name in TOOLS:
        text = (
            "#!/bin/sh\n"
            f"# Simulated {name} written by `ascend-pd sim install-tools` (not the real tool).\n"
            f"{defaults}"
            f'exec {python} -I -S {client} {name} "$@"\n'
        )
        written[name] = atomic_write_text(dest / name, text, mode=0o755)
    return written
