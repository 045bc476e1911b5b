"""Doctor checks: pure functions ``(facts, plan) -> Finding`` (the one finding type of
:mod:`ascend_pd.findings`; a check says pass / warn / fail, which become the severities
pass / warning / error).

Each result says what was observed, what was expected and how to fix it. The order of
:data:`CHECKS` is the order of the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from packaging.version import InvalidVersion, Version

from ascend_pd.doctor.facts import Facts
from ascend_pd.doctor.npu_health import device_health
from ascend_pd.doctor.release_checks import (
    check_cann_version,
    check_connector,
    check_python_version,
    check_torch_npu_build,
    check_vllm_pair,
    mooncake_expected,
    mooncake_installed,
)
from ascend_pd.errors import ParseError
from ascend_pd.findings import STATUS_SEVERITY, Finding, host_check
from ascend_pd.spec.models import ClusterSpec, HostSpec

if TYPE_CHECKING:
    from ascend_pd.render.plan import DeploymentPlan

Status = Literal["pass", "warn", "fail"]

#: Free space for the state dir (logs grow by GBs per day on a busy server).
DISK_FAIL_KB: Final[int] = 2 * 1024 * 1024
DISK_WARN_KB: Final[int] = 20 * 1024 * 1024
PACKAGES: Final[tuple[str, ...]] = ("torch", "torch_npu", "vllm", "vllm_ascend")


class CheckResult(Finding):
    """Kept importable for one release: doctor checks written against the former
    ``CheckResult(host, check, status, observed, expected, fix)`` keep working while other
    branches move to :func:`ascend_pd.findings.host_check`. It builds the one type (status
    pass / warn / fail becomes severity pass / warning / error); new code calls
    ``host_check`` instead."""

    def __init__(self, host: str, check: str, status: Status, observed: str,
                 expected: str = "", fix: str = "") -> None:
        super().__init__(severity=STATUS_SEVERITY[status], check=check, message=observed,
                         expected=expected, fix=fix, host=host)


@dataclass(frozen=True)
class HostPlan:
    """What the spec expects of one host."""

    spec: ClusterSpec
    host: HostSpec
    #: port -> (what listens there once deployed, the launch unit that opens it)
    ports: dict[int, tuple[str, str]] = field(default_factory=dict)
    #: the command's one deployment plan (None: it could not be built, see deploy_error)
    deploy: DeploymentPlan | None = None
    deploy_error: str | None = None

    @property
    def docker(self) -> bool:
        return self.host.runtime == "docker"


def planned_ports(deploy: DeploymentPlan | None, host: str) -> dict[int, tuple[str, str]]:
    """Every port the deployment plan opens on ``host`` -> (what, the unit that opens it):
    API and DP RPC ports, the LLMDataDist RPC and Mooncake kv_port ranges (port by port),
    and the proxy. Read from the one plan of the command (no plan: nothing to check)."""
    return deploy.port_owners(host) if deploy is not None else {}


Check = Callable[[Facts, HostPlan], Finding]


def _result(plan: HostPlan, check: str, status: Status, observed: str, expected: str = "",
            fix: str = "") -> Finding:
    return host_check(plan.host.name, check, status, observed, expected, fix)


def check_cann_env(facts: Facts, plan: HostPlan) -> Finding:
    expected = "ascend-toolkit/set_env.sh exports ASCEND_TOOLKIT_HOME and ASCEND_HOME_PATH"
    fix = ("Install the CANN toolkit, and source /usr/local/Ascend/ascend-toolkit/set_env.sh "
           "before starting vLLM (the rendered launch scripts do).")
    if facts.get("cann.set_env") != "present":
        return _result(plan, "cann-env", "fail",
                       "/usr/local/Ascend/ascend-toolkit/set_env.sh not found", expected, fix)
    home, path = facts.get("cann.toolkit_home", ""), facts.get("cann.home_path", "")
    if not home or not path:
        unset = [n for n, v in (("ASCEND_TOOLKIT_HOME", home), ("ASCEND_HOME_PATH", path)) if not v]
        return _result(plan, "cann-env", "fail", f"set_env.sh leaves {', '.join(unset)} unset",
                       expected, fix)
    return _result(plan, "cann-env", "pass", f"ASCEND_TOOLKIT_HOME={home}", expected)


def check_nnal_env(facts: Facts, plan: HostPlan) -> Finding:
    expected = "nnal/atb/set_env.sh exports ATB_HOME_PATH (libatb.so for vllm-ascend)"
    fix = ("Install the NNAL package matching CANN and source "
           "/usr/local/Ascend/nnal/atb/set_env.sh before starting vLLM.")
    if facts.get("nnal.set_env") != "present":
        return _result(plan, "nnal-env", "fail", "/usr/local/Ascend/nnal/atb/set_env.sh not found",
                       expected, fix)
    atb = facts.get("nnal.atb_home_path", "")
    if not atb:
        return _result(plan, "nnal-env", "fail", "set_env.sh leaves ATB_HOME_PATH unset",
                       expected, fix)
    return _result(plan, "nnal-env", "pass", f"ATB_HOME_PATH={atb}", expected)


def check_driver(facts: Facts, plan: HostPlan) -> Finding:
    driver = facts.get("driver.version", "absent")
    firmware = facts.get("firmware.version", "absent")
    observed = f"driver {driver}, firmware {firmware}"
    expected = "driver and firmware installed (/usr/local/Ascend/{driver,firmware}/version.info)"
    if driver == "absent" or firmware == "absent" or not driver or not firmware:
        return _result(plan, "driver", "fail", observed, expected,
                       "Install the Ascend HDK driver and firmware the CANN release notes name.")
    return _result(plan, "driver", "pass", observed, expected)


def python_unchecked(facts: Facts, plan: HostPlan, expected: str) -> Finding | None:
    """The python-packages result when the packages cannot be looked at (docker runtime,
    no Python on the host), else None. Shared by the Ascend and CUDA package checks."""
    if plan.docker:
        return _result(plan, "python-packages", "warn", "not checked: runtime docker "
                       "(packages live in the image)", expected)
    if facts.get("py.python", "absent") == "absent":
        return _result(plan, "python-packages", "fail", "python3 not found", expected,
                       "Install Python (in the range the python-version check names), or "
                       "set ASCEND_PD_PYTHON in hosts[].env to the interpreter that runs vLLM.")
    return None


def check_packages(facts: Facts, plan: HostPlan) -> Finding:
    expected = "python3 with " + ", ".join(PACKAGES)
    unchecked = python_unchecked(facts, plan, expected)
    if unchecked is not None:
        return unchecked
    missing = [p for p in PACKAGES if facts.get(f"py.{p}", "absent") == "absent"]
    found = ", ".join(f"{p} {facts.get(f'py.{p}')}" for p in PACKAGES if p not in missing)
    if missing:
        return _result(plan, "python-packages", "fail", f"missing: {', '.join(missing)}",
                       expected, "pip install the missing packages at the versions of "
                       "vllm-ascend's compatibility matrix (torch-npu must match torch).")
    if plan.spec.connector.type == "mooncake":
        mooncake = mooncake_installed(facts)
        wanted = mooncake_expected(facts, plan)
        if mooncake is None:
            return _result(plan, "python-packages", "warn", found + "; mooncake not installed",
                           f"{expected}, {wanted}",
                           f"pip install {wanted.replace(' ', '==')} (or build Mooncake with "
                           "-DUSE_ASCEND_DIRECT=ON).")
        found += f", {mooncake}"
    return _result(plan, "python-packages", "pass", found, expected)


def _base(version: str) -> str | None:
    """X.Y.Z of a version (``2.7.1.post1+cpu`` -> ``2.7.1``), None when unparsable."""
    try:
        return Version(version).base_version
    except InvalidVersion:
        return None


def check_torch_pair(facts: Facts, plan: HostPlan) -> Finding:
    torch, npu = facts.get("py.torch", "absent") or "absent", facts.get("py.torch_npu", "absent")
    npu = npu or "absent"
    expected = "torch-npu built for the installed torch (same X.Y.Z)"
    if plan.docker or "absent" in (torch, npu):
        return _result(plan, "torch-npu-pair", "warn", f"torch {torch}, torch_npu {npu}: "
                       "cannot compare", expected)
    if _base(torch) != _base(npu):
        return _result(plan, "torch-npu-pair", "fail", f"torch {torch}, torch_npu {npu}", expected,
                       f"pip install torch=={_base(npu)} (or the torch-npu built for "
                       f"torch {_base(torch)}), then reinstall vllm without upgrading "
                       "torch.")
    return _result(plan, "torch-npu-pair", "pass", f"torch {torch}, torch_npu {npu}", expected)


def check_model(facts: Facts, plan: HostPlan) -> Finding:
    model = plan.spec.model
    expected = f"{model.path}/config.json readable"
    if facts.get("model.config") != "present":
        detail = facts.get("model.error") or "missing"
        return _result(plan, "model-config", "fail", f"{model.path}/config.json {detail}",
                       expected, "Copy the model to the same path on every host (model.path).")
    return _result(plan, "model-config", "pass", f"{model.path}/config.json", expected)


def check_model_dtype(facts: Facts, plan: HostPlan) -> Finding:
    quant = plan.spec.model.quantization
    if facts.get("model.config") != "present":
        return _result(plan, "model-dtype", "warn", "no config.json to read", "")
    dtype = facts.get("model.torch_dtype") or "unset"
    w8a8 = "present" in (facts.get("model.quantization_config"),
                         facts.get("model.quant_description"))
    observed = f"torch_dtype {dtype}, " + ("W8A8 weights" if w8a8 else "no quantization config")
    if quant == "ascend":
        expected = "quantization: ascend with W8A8 weights and torch_dtype bfloat16"
        if dtype == "float16":
            return _result(plan, "model-dtype", "fail", observed, expected,
                           'Set "torch_dtype": "bfloat16" in config.json: the W8A8 kernel '
                           "(aclnnQuantMatmulV4) has no float16 scale.")
        if not w8a8:
            return _result(plan, "model-dtype", "warn", observed, expected,
                           "quantization: ascend needs msmodelslim W8A8 weights; use "
                           "quantization: none for bf16 weights.")
        return _result(plan, "model-dtype", "pass", observed, expected)
    expected = "quantization: none with unquantized weights"
    if w8a8:
        return _result(plan, "model-dtype", "warn", observed, expected,
                       "Set model.quantization: ascend; W8A8 weights run without it only as a "
                       "much larger model (NPU out of memory).")
    return _result(plan, "model-dtype", "pass", observed, expected)


def check_host_ip(facts: Facts, plan: HostPlan) -> Finding:
    host = plan.host
    wanted = {host.address}
    for _, inst in plan.spec.instances:
        if host.name in inst.hosts:
            wanted |= {inst.env[k] for k in ("HCCL_IF_IP", "VLLM_HOST_IP") if k in inst.env}
    expected = f"{', '.join(sorted(wanted))} on {host.nic} (HCCL_IF_IP, VLLM_HOST_IP)"
    if facts.get("nic.exists") != "yes":
        return _result(plan, "host-ip-on-nic", "fail",
                       f"{host.nic}: {facts.get('nic.error') or 'no such interface'}", expected,
                       "Set hosts[].nic to the interface that carries the host address.")
    addrs = [a.split("/", 1)[0] for a in facts.all("nic.addr")]
    observed = f"{host.nic}: {', '.join(facts.all('nic.addr')) or 'no IPv4 address'}"
    missing = sorted(wanted - set(addrs))
    if missing:
        return _result(plan, "host-ip-on-nic", "fail", observed, expected,
                       f"Put {', '.join(missing)} on {host.nic}, or correct hosts[].address / "
                       "hosts[].nic: HCCL_IF_IP and VLLM_HOST_IP must be this host's address.")
    return _result(plan, "host-ip-on-nic", "pass", observed, expected)


def check_hccn_conf(facts: Facts, plan: HostPlan) -> Finding:
    mount = "-v /etc/hccn.conf:/etc/hccn.conf:ro"
    expected = "/etc/hccn.conf present" + (f", mounted into the container ({mount})"
                                          if plan.docker else "")
    if facts.get("hccn_conf") != "present":
        return _result(plan, "hccn-conf", "fail", "/etc/hccn.conf missing", expected,
                       "Configure the device IPs with hccn_tool (it writes /etc/hccn.conf).")
    observed = f"/etc/hccn.conf, {facts.get('hccn_conf.addresses', '0')} device address(es)"
    return _result(plan, "hccn-conf", "pass", observed, expected,
                   f"Keep {mount} in the container arguments." if plan.docker else "")


def check_ports(facts: Facts, plan: HostPlan) -> Finding:
    expected = "free: " + (", ".join(str(p) for p in sorted(plan.ports)) or "(none planned)")
    owners = plan.ports
    running = set(facts.all("running"))
    # A port held by the very instance that plans it (already launched) is not a conflict.
    ours = [p for p in sorted(plan.ports) if facts.get(f"port.{p}") == "busy"
            and owners.get(p, ("", ""))[1] in running]
    busy = [p for p in sorted(plan.ports) if facts.get(f"port.{p}") == "busy" and p not in ours]
    if busy:
        what = ", ".join(f"{p} ({plan.ports[p][0]})" for p in busy)
        return _result(plan, "ports", "fail", f"in use: {what}", expected,
                       "Stop whatever listens there (`ss -ltnp`), or move the port in pd.yaml.")
    observed = f"{len(plan.ports) - len(ours)} planned port(s) free"
    if ours:
        observed += "; in use by its own running instance: " + ", ".join(
            f"{p} ({owners[p][1]})" for p in ours)
    return _result(plan, "ports", "pass", observed, expected)


def check_disk(facts: Facts, plan: HostPlan) -> Finding:
    avail = facts.get("disk.avail_kb", "")
    where = f"{facts.get('disk.path', plan.spec.state_dir)}"
    expected = f">= {DISK_WARN_KB // 1024 // 1024} GiB free for {plan.spec.state_dir}"
    if not avail or not avail.isdigit():
        return _result(plan, "disk", "warn", f"{where}: df gave no answer", expected)
    kb = int(avail)
    observed = f"{where}: {kb / 1024 / 1024:.1f} GiB free"
    fix = "Free space or move state_dir to a larger filesystem."
    if kb < DISK_FAIL_KB:
        return _result(plan, "disk", "fail", observed, expected, fix)
    if kb < DISK_WARN_KB:
        return _result(plan, "disk", "warn", observed, expected, fix)
    return _result(plan, "disk", "pass", observed, expected)


def check_npu_health(facts: Facts, plan: HostPlan) -> Finding:
    devices = plan.host.devices
    expected = f"Health OK on devices {','.join(map(str, devices))}"
    fix = "Inspect `npu-smi info -t health -i <card>`; reset or replace the device."
    if facts.get("npu_smi.exit") != "0":
        out = next((line for line in facts.all("npu_smi.out") if line.strip()), "")
        return _result(plan, "npu-health", "fail",
                       f"npu-smi info exited {facts.get('npu_smi.exit')}: {out}", expected,
                       "Install the driver (npu-smi) or set hosts[].npu_smi.")
    try:
        health = device_health("\n".join(facts.all("npu_smi.out")))
    except ParseError as exc:
        return _result(plan, "npu-health", "fail", f"{exc.message}: {exc.line}", expected,
                       exc.hint or "")
    bad = {d: health.get(d, "missing") for d in devices if health.get(d) != "OK"}
    if not bad:
        return _result(plan, "npu-health", "pass", f"{len(devices)} device(s) OK", expected)
    observed = ", ".join(f"device {d}: {h}" for d, h in sorted(bad.items()))
    status: Status = "warn" if set(bad.values()) == {"Warning"} else "fail"
    return _result(plan, "npu-health", status, observed, expected, fix)


CHECKS: Final[tuple[Check, ...]] = (
    check_cann_env, check_nnal_env, check_driver, check_cann_version, check_packages,
    check_python_version, check_torch_pair, check_torch_npu_build, check_vllm_pair,
    check_connector, check_model, check_model_dtype, check_host_ip,
    check_hccn_conf, check_ports, check_disk, check_npu_health,
)


def run_checks(facts: Facts, plan: HostPlan) -> list[Finding]:
    """Every check over one host's facts (``platform: cuda``: the GPU checks instead of the
    Ascend ones, ``doctor.cuda``)."""
    checks = CHECKS
    if plan.spec.platform == "cuda":
        from ascend_pd.doctor.cuda import cuda_checks

        checks = cuda_checks()
    return [check(facts, plan) for check in checks]
