"""Write ``hccn_tool`` / ``npu-smi`` / ``nvidia-smi`` wrapper scripts that run the simulated
tools.

The scripts (bash) first ask the resident simulator daemon over loopback TCP with bash
builtins alone (``ascend_pd.sim.simd_tcp``). Otherwise they exec this interpreter by absolute
path (``sys.executable``), so they work from any PATH, over SSH and inside another network
namespace, without activating a venv, running the thin client (``simd_client.py``, with
``-I -S``: no site, no package import) that asks the daemon on its unix socket and starts
it when none runs; see ``ascend_pd.sim.simd_client`` for the numbers.
"""

from __future__ import annotations

import shlex
import sys
import zlib
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
    exe = str(Path(sys.executable).absolute())
    python = shlex.quote(exe)
    defaults = ""
    if cluster is not None:
        value = shlex.quote(str(Path(cluster).expanduser().absolute()))
        defaults += f': "${{{CLUSTER_ENV}:={value}}}"; export {CLUSTER_ENV}\n'
    if host is not None:
        defaults += f': "${{{HOST_ENV}:={shlex.quote(host)}}}"; export {HOST_ENV}\n'
    client = shlex.quote(str(Path(simd_client.__file__).absolute()))
    # The daemon's TCP address sits next to the cluster file, per interpreter (as its
    # unix socket is): two checkouts never talk to each other's daemon.
    key = f"{zlib.crc32(exe.encode()):08x}"
    written: dict[str, Path] = {}
    for name in TOOLS:
        text = (
            "#!/bin/bash\n"
            f"# Simulated {name} written by `ascend-pd sim install-tools` (not the real tool).\n"
            f"{defaults}"
            + _FAST_PATH.replace("@ADDR_ENV@", simd_client.ADDR_ENV).replace("@KEY@", key)
            .replace("@CLUSTER_ENV@", CLUSTER_ENV).replace("@HOST_ENV@", HOST_ENV)
            .replace("@PROG@", name)
            + f'exec {python} -I -S {client} {name} "$@"\n'
        )
        written[name] = atomic_write_text(dest / name, text, mode=0o755)
    return written


#: The bash fast path: ask the resident daemon over loopback TCP with builtins only
#: (``sim.simd_tcp`` has the protocol and why); anything unexpected (no daemon yet, a stale
#: address, a cut answer) falls through to the Python thin client on the last line, which
#: also starts the daemon. C locale: ``read -N`` then counts bytes.
_FAST_PATH = r"""@ADDR_ENV@="${@CLUSTER_ENV@:-}.simd-@KEY@"; export @ADDR_ENV@
if [ -n "${@CLUSTER_ENV@:-}" ] && [ -n "${@HOST_ENV@:-}" ] \
    && { read -r port token < "$@ADDR_ENV@"; } 2>/dev/null \
    && { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
  LC_ALL=C
  printf '%s\0' "$token" @PROG@ "$@CLUSTER_ENV@" "$@HOST_ENV@" "$#" "$@" >&3
  out='' err=''
  if IFS=' ' read -r -t 30 code delay nout nerr <&3 && [ -n "$nerr" ] \
      && { [ "$nout" = 0 ] || IFS= read -r -d '' -N "$nout" out <&3; } \
      && { [ "$nerr" = 0 ] || IFS= read -r -d '' -N "$nerr" err <&3; }; then
    exec 3<&-
    # a hung device: the caller's timeout kills this process group
    [ "$delay" = 0 ] || sleep "$delay"
    printf '%s' "$out"
    printf '%s' "$err" >&2
    exit "$code"
  fi
  exec 3<&-
fi
"""
