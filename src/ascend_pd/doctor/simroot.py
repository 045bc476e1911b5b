"""A simulated Ascend host as a directory tree, for the doctor probe (``ASCEND_PD_SYSROOT``).

:func:`build_sysroot` writes a healthy host: CANN and NNAL ``set_env.sh``, driver /
firmware / toolkit version files, a site-packages directory with ``*.dist-info`` for torch,
torch_npu, vllm and vllm_ascend (found by ``importlib.metadata`` through PYTHONPATH), a
model directory with ``config.json``, ``/etc/hccn.conf``, and ``sim-bin/`` stand-ins for
``ip`` and ``npu-smi`` (put first on PATH). Each fault knob breaks exactly one doctor
check. Run the probe with :attr:`SimHost.env` as the host's environment.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ascend_pd.errors import UsageError
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.releases import known_releases, newest_stable, resolve

#: fault knob -> the doctor check it breaks
FAULTS: Final[dict[str, str]] = {
    "missing_cann_env": "cann-env",
    "nnal_missing": "nnal-env",
    "torch_npu_missing": "python-packages",
    "torch_mismatch": "torch-npu-pair",
    "vllm_mismatch": "vllm-pair",
    "float16_dtype": "model-dtype",
    "no_config_json": "model-config",
    "hccn_conf_missing": "hccn-conf",
    "low_disk": "disk",
    "nic_without_address": "host-ip-on-nic",
    "npu_unhealthy": "npu-health",
}



def healthy_versions(release: str) -> tuple[dict[str, str], str]:
    """Package versions and CANN of a healthy host for a vllm-ascend release, from its facts
    (the matrix row: vLLM, torch, torch-npu build, stable CANN, Mooncake package)."""
    facts = resolve(release).facts
    row = facts.compat
    vllm = (row.vllm or release).split("/")[0].removeprefix("v")
    pkgs = {"torch": row.torch or "", "torch_npu": row.torch_npu or "", "vllm": vllm,
            "vllm_ascend": release}
    if row.mooncake_package:
        pkgs[row.mooncake_package] = row.mooncake_version or "0"
    return {k: v for k, v in pkgs.items() if v}, row.cann or ""

# npu-smi 24.1.0.3 on an Atlas 800T A2 (vllm-project/vllm-ascend#900); {h0}..{h7} = Health.
_A2_TABLE: Final[str] = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.0.3                 Version: 24.1.0.3                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
{rows}+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
+===========================+===============+====================================================+
"""
_A2_BUS: Final[tuple[str, ...]] = ("C1", "C2", "81", "82", "01", "02", "41", "42")


def npu_smi_a2_table(health: Mapping[int, str] | None = None) -> str:
    """``npu-smi info`` of an 8-NPU A2 host with the given Health per device (default OK)."""
    rows = []
    for dev in range(8):
        value = (health or {}).get(dev, "OK")
        rows.append(f"| {dev:<5} 910B3               | {value:<13} | 98.9        38"
                    "                0    / 0             |\n")
        rows.append(f"| 0                         | 0000:{_A2_BUS[dev]}:00.0  | 0           0"
                    "    / 0          3382 / 65536         |\n")
        rows.append("+===========================+===============+"
                    "====================================================+\n")
    return _A2_TABLE.format(rows="".join(rows))


@dataclass(frozen=True)
class SimHost:
    """A built sysroot and the environment that makes a host command use it."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)


def _write(path: Path, text: str, mode: int | None = None) -> None:
    atomic_write_text(path, text, mode=mode)


def dist_info(site: Path, name: str, version: str, requires: Iterable[str] = ()) -> None:
    """A ``*.dist-info`` that ``importlib.metadata`` finds (version and Requires-Dist)."""
    # importlib.metadata finds "<name with underscores>-<version>.dist-info"
    meta = site / f"{name.replace('-', '_')}-{version.split('+')[0]}.dist-info"
    _write(meta / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
           + "".join(f"Requires-Dist: {r}\n" for r in requires))
    _write(meta / "RECORD", "")


def write_ip_standin(bin_dir: Path, addrs: Mapping[str, Iterable[str]]) -> None:
    """``bin_dir/ip``: answers ``ip -o -4 addr show dev NIC`` with ``addrs[NIC]``."""
    cases = "".join(
        f"  {shlex.quote(nic)}) " + "".join(
            f"printf '%s\\n' {shlex.quote(f'2: {nic}    inet {a} scope global {nic}')}; "
            for a in lst) + "exit 0 ;;\n"
        for nic, lst in addrs.items())
    _write(bin_dir / "ip", "#!/bin/sh\n# ascend-pd sim: `ip -o -4 addr show dev NIC`\n"
           'dev=""\nwhile [ $# -gt 0 ]; do [ "$1" = dev ] && dev="$2"; shift; done\n'
           f'case "$dev" in\n{cases}'
           '  *) echo "Device \\"$dev\\" does not exist." >&2; exit 1 ;;\nesac\n', mode=0o755)


def build_sysroot(
    dest: str | Path,
    *,
    faults: Iterable[str] = (),
    model_path: str = "/models/Qwen3-32B-W8A8",
    w8a8: bool = True,
    nics: Mapping[str, Iterable[str]] | None = None,
    state_dir: str = "/var/lib/ascend-pd",
    versions: Mapping[str, str] | None = None,
    cann_version: str | None = None,
    release: str | None = None,
    sources: Mapping[str, Path] | None = None,
) -> SimHost:
    """Write a simulated Ascend A2 host under ``dest``.

    Args:
        dest: the sysroot directory (created).
        faults: knobs from :data:`FAULTS`, each breaking one doctor check.
        model_path: where the model lives (as on the real host).
        w8a8: write a W8A8 (msmodelslim) model config; else a plain bf16 one.
        nics: NIC -> addresses with prefix the ``ip`` stand-in reports
            (default ``{"eth0": ["192.0.2.11/24"]}``).
        state_dir: the spec's state_dir (created, for ``df``).
        versions: override package versions (distribution name -> version).
        cann_version: the toolkit version (default: the release's stable CANN).
        release: the vllm-ascend release the host runs (default: the newest stable); every
            other version is the one its compatibility row names.
        sources: package -> a real source tree holding it (e.g. an unpacked sdist with
            ``vllm_ascend/``), linked into site-packages so ``doctor --deep`` reads real code.

    Raises:
        UsageError: an unknown fault name.
    """
    wanted = set(faults)
    unknown = sorted(wanted - FAULTS.keys())
    if unknown:
        raise UsageError(f"unknown sysroot fault(s): {', '.join(unknown)}",
                         hint=f"use: {', '.join(FAULTS)}")
    healthy, stable_cann = healthy_versions(release or newest_stable())
    cann_version = cann_version or stable_cann
    root = Path(dest).resolve()
    ascend = root / "usr/local/Ascend"
    home = f"{ascend}/ascend-toolkit/latest"
    if "missing_cann_env" not in wanted:
        _write(ascend / "ascend-toolkit/set_env.sh",
               f"export ASCEND_TOOLKIT_HOME={home}\nexport ASCEND_HOME_PATH={home}\n"
               f'export LD_LIBRARY_PATH={home}/lib64:${{LD_LIBRARY_PATH:-}}\n')
    if "nnal_missing" not in wanted:
        _write(ascend / "nnal/atb/set_env.sh",
               f"export ATB_HOME_PATH={ascend}/nnal/atb/latest/atb/cxx_abi_1\n")
    _write(ascend / "driver/version.info", "Version=24.1.0.3\nascendhal_version=7.35.23\n")
    _write(ascend / "firmware/version.info", "Version=7.5.0.3.220\nfirmware_version=1.0\n")
    _write(Path(home) / "x86_64-linux/ascend_toolkit_install.info",
           f"package_name=Ascend-cann-toolkit\nversion={cann_version}\narch=x86_64\n")

    pkgs = healthy | dict(versions or {})
    if "torch_mismatch" in wanted:
        # a torch one minor release away from the one torch-npu is built for
        major, minor, *_ = pkgs["torch"].split(".")
        pkgs["torch"] = f"{major}.{int(minor) + 1}.0"
    if "vllm_mismatch" in wanted:
        pkgs["vllm"] = resolve(known_releases()[0]).facts.compat.vllm or "0.0.1"
    if "torch_npu_missing" in wanted:
        pkgs.pop("torch_npu")
    site = root / "usr/local/lib/python3/site-packages"
    site.mkdir(parents=True, exist_ok=True)
    for name, version in pkgs.items():
        dist_info(site, name, version)
    for package, tree in (sources or {}).items():
        link = site / package
        if not link.exists():
            link.symlink_to(Path(tree).resolve() / package, target_is_directory=True)

    model = root / model_path.lstrip("/")
    config: dict[str, object] = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                                 "torch_dtype": "float16" if "float16_dtype" in wanted
                                 else "bfloat16"}
    if w8a8:
        config["quantization_config"] = {"quant_method": "ascend", "bits": 8}
    model.mkdir(parents=True, exist_ok=True)
    if "no_config_json" not in wanted:
        _write(model / "config.json", json.dumps(config, indent=2) + "\n")

    if "hccn_conf_missing" not in wanted:
        _write(root / "etc/hccn.conf", "".join(
            f"address_{d}=29.10.1.{d + 1}\nnetmask_{d}=255.255.255.0\nnetdetect_{d}=29.10.1.254\n"
            f"gateway_{d}=29.10.1.254\nsend_arp_status_{d}=1\ntls_enable_{d}=0\n"
            for d in range(8)))
    bin_dir = write_host_tree(root, state_dir=state_dir, nics=nics, faults=wanted)
    health = {3: "Alarm"} if "npu_unhealthy" in wanted else {}
    _write(root / "etc/ascend-pd-sim/npu-smi-info.txt", npu_smi_a2_table(health))
    _write(bin_dir / "npu-smi", "#!/bin/sh\n# ascend-pd sim: `npu-smi info`\n"
           f'[ "$1" = info ] && [ $# -eq 1 ] && exec cat {shlex.quote(str(root))}'
           "/etc/ascend-pd-sim/npu-smi-info.txt\n"
           'echo "Error parameter in querying chip info."; exit 1\n', mode=0o755)

    return SimHost(root, sysroot_env(root, bin_dir, site))


def write_host_tree(root: Path, *, state_dir: str, nics: Mapping[str, Iterable[str]] | None,
                    faults: Iterable[str]) -> Path:
    """What every simulated host has: the state dir (and the ``low_disk`` canned ``df``) and
    the ``ip`` stand-in (``nic_without_address``); returns ``sim-bin/``."""
    wanted = set(faults)
    (root / state_dir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    if "low_disk" in wanted:
        _write(root / "etc/ascend-pd-sim/df",
               "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
               "/dev/vda1        51474912 50950624    524288     99% /\n")
    bin_dir = root / "sim-bin"
    addrs = {k: list(v) for k, v in (nics or {"eth0": ["192.0.2.11/24"]}).items()}
    if "nic_without_address" in wanted:
        addrs = {nic: [] for nic in addrs}
    write_ip_standin(bin_dir, addrs)
    return bin_dir


def sysroot_env(root: Path, bin_dir: Path, site: Path) -> dict[str, str]:
    """The host environment that makes the probe see the tree: sysroot, stand-ins first on
    PATH, the fake site-packages, this interpreter as the host's Python."""
    return {
        "ASCEND_PD_SYSROOT": str(root),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(site),
        "ASCEND_PD_PYTHON": sys.executable,
    }
