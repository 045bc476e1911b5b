"""Doctor checks for ``platform: cuda`` hosts (upstream vLLM on NVIDIA GPUs).

The probe (``probe.sh`` with ``cuda``) runs ``nvidia-smi --query-gpu=…`` and ``nvidia-smi``
instead of the Ascend stack, and reads torch / vLLM / nixl / the CUDA runtime package from
the host's Python. These checks replace the Ascend ones (CANN, NNAL, hccn.conf, npu-smi,
vllm-ascend release facts); the model, NIC, port and disk checks are shared.

Why compare the driver's CUDA with torch's: ``nvidia-smi``'s "CUDA Version" is the newest
CUDA the driver supports. An application built for a newer CUDA major version does not run
on it (torch: "The NVIDIA driver on your system is too old"); a newer minor of the same
major runs under CUDA's minor-version compatibility, without the features that need the
newer driver (NVIDIA, "CUDA Compatibility", docs.nvidia.com/deploy/cuda-compatibility).
"""

from __future__ import annotations

from typing import Final

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

# checks.py imports this module lazily (in run_checks), so this import is not a cycle
from ascend_pd.doctor.checks import (
    Check,
    HostPlan,
    Status,
    check_disk,
    check_host_ip,
    check_model,
    check_ports,
    python_unchecked,
)
from ascend_pd.doctor.facts import Facts
from ascend_pd.errors import ParseError
from ascend_pd.findings import Finding, host_check
from ascend_pd.nvidiasmi.commands import QUERY_FIELDS
from ascend_pd.nvidiasmi.parse import Gpu, nvml_hint, parse_gpu_csv, parse_versions
from ascend_pd.render.ports import dp_local

#: the CUDA runtime distributions torch's wheels depend on (CUDA 12, CUDA 13)
RUNTIME_PACKAGES: Final[tuple[str, ...]] = ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime")


def _result(plan: HostPlan, check: str, status: Status, observed: str, expected: str = "",
            fix: str = "") -> Finding:
    return host_check(plan.host.name, check, status, observed, expected, fix)


def _installed(facts: Facts, name: str) -> str | None:
    value = facts.get(f"py.{name.replace('-', '_')}", "absent")
    return None if value in (None, "", "absent") else value


def _first_line(facts: Facts, key: str) -> str:
    return next((line for line in facts.all(key) if line.strip()), "no output")


def _smi_failure(facts: Facts, key: str) -> tuple[str, str] | None:
    """(observed, fix) when the nvidia-smi call behind ``key`` failed, else None."""
    code = facts.get(f"{key}.exit")
    if code == "0":
        return None
    text = "\n".join(facts.all(f"{key}.out"))
    if code == "127":
        return ("nvidia-smi not found", "Install the NVIDIA driver (it ships nvidia-smi), or "
                "put it on PATH / set ASCEND_PD_NVIDIA_SMI in hosts[].env.")
    return (f"nvidia-smi exited {code}: {_first_line(facts, f'{key}.out')}",
            nvml_hint(text) or "Run nvidia-smi on the host and fix what it reports.")


def _span(devices: list[int]) -> str:
    return ",".join(map(str, devices))


def check_gpus(facts: Facts, plan: HostPlan) -> Finding:
    """Every GPU the instances on this host use is enumerated by nvidia-smi."""
    spec, name = plan.spec, plan.host.name
    users = [inst for _role, inst in spec.instances if name in inst.hosts]
    wanted = sorted({d for inst in users for d in inst.devices})
    expected = (f"GPUs {_span(wanted)}: " + "; ".join(
        f"{inst.name} {_span(inst.devices)} (TP {inst.tp} x DP-local {dp_local(inst)})"
        for inst in users)) if users else "no instance runs here"
    failed = _smi_failure(facts, "gpu_query")
    if failed is not None:
        return _result(plan, "gpus", "fail", failed[0], expected, failed[1])
    try:
        gpus = parse_gpu_csv("\n".join(facts.all("gpu_query.out")), QUERY_FIELDS)
    except ParseError as exc:
        return _result(plan, "gpus", "fail", f"{exc.message}: {exc.line}", expected,
                       exc.hint or "")
    observed = _describe(gpus)
    present = {g.index for g in gpus}
    missing = [d for d in wanted if d not in present]
    if missing:
        return _result(
            plan, "gpus", "fail", observed, expected,
            f"GPU(s) {_span(missing)} are not enumerated. A GPU that fell off the bus (dmesg: "
            "Xid 79) or was disabled is gone from nvidia-smi and the others are numbered from "
            "0 again: reset it (nvidia-smi -r -i N) or reboot, or set the instances' devices "
            "in pd.yaml to GPUs the host has.")
    used = {g.name for g in gpus if g.index in set(wanted)}
    if len(used) > 1:
        return _result(plan, "gpus", "warn", observed, expected,
                       "The instances on this host use different GPU models; TP ranks run at "
                       "the pace of the slowest.")
    return _result(plan, "gpus", "pass", observed, expected)


def _describe(gpus: list[Gpu]) -> str:
    if not gpus:
        return "nvidia-smi lists no GPU"
    models: dict[str, int] = {}
    for gpu in gpus:
        label = gpu.name + (f" ({gpu.memory_mib} MiB)" if gpu.memory_mib else "")
        models[label] = models.get(label, 0) + 1
    driver = gpus[0].driver_version
    return (", ".join(f"{n} x {label}" for label, n in models.items())
            + f"; indexes {_span([g.index for g in gpus])}"
            + (f"; driver {driver}" if driver else ""))


def _major_minor(text: str) -> str | None:
    try:
        release = Version(text).release
    except InvalidVersion:
        return None
    return f"{release[0]}.{release[1]}" if len(release) >= 2 else None


def runtime_cuda(facts: Facts) -> tuple[str, str] | None:
    """(CUDA X.Y, where it was read) of the CUDA runtime torch uses; None when unknown.

    torch's local version label names its build (``2.9.0+cu128`` -> 12.8); a wheel without
    one (PyPI's default build) depends on ``nvidia-cuda-runtime-cu12`` / ``-runtime`` (13).
    """
    torch = _installed(facts, "torch")
    if torch:
        try:
            local = Version(torch).local or ""
        except InvalidVersion:
            local = ""
        if local.startswith("cu") and local[2:].isdigit() and len(local) >= 5:
            digits = local[2:]
            return f"{digits[:-1]}.{digits[-1]}", f"torch {torch}"
    for package in RUNTIME_PACKAGES:
        version = _installed(facts, package)
        cuda = _major_minor(version) if version else None
        if cuda:
            return cuda, f"{package} {version}"
    return None


def check_gpu_driver(facts: Facts, plan: HostPlan) -> Finding:
    """The driver supports the CUDA runtime the host's torch is built for."""
    rt = runtime_cuda(facts)
    expected = (f"a driver supporting CUDA >= {rt[0]} ({rt[1]})" if rt
                else "a driver supporting the CUDA of the installed torch")
    failed = _smi_failure(facts, "gpu_smi")
    if failed is not None:
        return _result(plan, "gpu-driver", "fail", failed[0], expected, failed[1])
    try:
        versions = parse_versions("\n".join(facts.all("gpu_smi.out")))
    except ParseError as exc:
        return _result(plan, "gpu-driver", "fail", f"{exc.message}: {exc.line}", expected,
                       exc.hint or "")
    observed = f"driver {versions.driver}, CUDA {versions.cuda or 'not shown'}"
    if rt is None or versions.cuda is None:
        why = "torch's CUDA is unknown" if rt is None else "nvidia-smi shows no CUDA version"
        return _result(plan, "gpu-driver", "warn", f"{observed} ({why})", expected)
    have, need = Version(versions.cuda), Version(rt[0])
    observed += f"; torch uses CUDA {rt[0]} ({rt[1]})"
    fix = (f"Install an NVIDIA driver whose nvidia-smi shows CUDA Version >= {rt[0]} (NVIDIA's "
           "CUDA release notes list the minimum driver of each CUDA release), or install the "
           f"torch and vLLM builds for CUDA {versions.cuda}.")
    if have >= need:
        return _result(plan, "gpu-driver", "pass", observed, expected)
    if have.release[0] == need.release[0]:
        return _result(plan, "gpu-driver", "warn", observed,
                       expected + " (same major: runs under minor-version compatibility, "
                       "without the features that need the newer driver)", fix)
    return _result(plan, "gpu-driver", "fail", observed, expected, fix)


def check_cuda_packages(facts: Facts, plan: HostPlan) -> Finding:
    """torch and vLLM (and nixl for the NixlConnector) in the host's Python."""
    wanted = ["torch", "vllm"] + (["nixl"] if plan.spec.connector.type == "nixl" else [])
    expected = "python3 with " + ", ".join(wanted)
    unchecked = python_unchecked(facts, plan, expected)
    if unchecked is not None:
        return unchecked
    missing = [p for p in wanted if _installed(facts, p) is None]
    found = ", ".join(f"{p} {_installed(facts, p)}" for p in wanted if p not in missing)
    if missing:
        fix = "pip install " + " ".join(missing)
        if "nixl" in missing:
            fix += " (vLLM's NixlConnector imports nixl; it is not a vLLM dependency)"
        return _result(plan, "python-packages", "fail",
                       f"missing: {', '.join(missing)}" + (f"; found {found}" if found else ""),
                       expected, fix + ".")
    return _result(plan, "python-packages", "pass", found, expected)


def check_vllm_torch(facts: Facts, plan: HostPlan) -> Finding:
    """The installed torch is the one vLLM's metadata pins (its compiled ops need it)."""
    vllm, torch = _installed(facts, "vllm"), _installed(facts, "torch")
    text = facts.get("py.vllm_requires_torch")
    expected = f"torch as vllm {vllm} requires ({text})" if text else "torch vLLM requires"
    if plan.docker or vllm is None or torch is None:
        return _result(plan, "vllm-torch", "warn", f"vllm {vllm or 'absent'}, torch "
                       f"{torch or 'absent'}: not compared", expected)
    if not text:
        return _result(plan, "vllm-torch", "warn", f"vllm {vllm} names no torch requirement",
                       expected)
    try:
        req = Requirement(text)
        ok = req.specifier.contains(Version(torch), prereleases=True)
    except (InvalidRequirement, InvalidVersion):
        return _result(plan, "vllm-torch", "warn", f"cannot compare torch {torch} with "
                       f"{text!r}", expected)
    observed = f"vllm {vllm}, torch {torch}"
    if ok:
        return _result(plan, "vllm-torch", "pass", observed, expected)
    return _result(plan, "vllm-torch", "fail", observed, expected,
                   f"pip install 'torch{req.specifier}' (vllm {vllm}'s compiled kernels are "
                   "built against it and fail to load with another torch), or install the "
                   f"vllm release built for torch {torch}.")


def cuda_checks() -> tuple[Check, ...]:
    """The checks of a ``platform: cuda`` host, in report order."""
    return (check_gpus, check_gpu_driver, check_cuda_packages, check_vllm_torch, check_model,
            check_host_ip, check_ports, check_disk)
