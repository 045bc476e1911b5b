"""Doctor checks that compare a host with what its vllm-ascend release needs.

Every expectation (vLLM pairing, stable CANN, Python range, torch / torch-npu build, Mooncake
package, registered connectors) comes from the harvested release facts
(:mod:`ascend_pd.releases`); there are no version constants here. The release is the one
*installed* on the host when the probe saw it (else the spec's ``connector.vllm_ascend_version``).
A release the data does not know is resolved to the nearest older known one, and the checks
say so: its CANN minimum is treated as unknown (warn), never as a floor from an old release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ascend_pd.doctor.facts import Facts
from ascend_pd.errors import AscendPDError
from ascend_pd.findings import Finding, host_check
from ascend_pd.releases import Resolution, resolve

if TYPE_CHECKING:
    from ascend_pd.doctor.checks import HostPlan

#: Mooncake's Python distributions: the source build (``-DUSE_ASCEND_DIRECT=ON``) installs
#: the first, the release images from v0.23.0rc1 on pip-install the second (Dockerfile.a3).
MOONCAKE_PACKAGES = ("mooncake-transfer-engine", "mooncake-transfer-engine-npu")


def _version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def installed(facts: Facts, name: str) -> str | None:
    """A package version the probe saw, None when absent."""
    value = facts.get(f"py.{name}", "absent")
    return None if value in (None, "", "absent") else value


def release_for(facts: Facts, plan: HostPlan) -> tuple[Resolution | None, str]:
    """The release facts for this host and where its version came from."""
    ascend = None if plan.docker else installed(facts, "vllm_ascend")
    text, origin = (ascend, "installed") if ascend else (
        plan.spec.connector.vllm_ascend_version, "connector.vllm_ascend_version")
    try:
        return resolve(str(Version(text).public) if _version(text) else text), origin
    except AscendPDError:
        return None, origin


def _result(plan: HostPlan, check: str, status: str, observed: str, expected: str = "",
            fix: str = "") -> Finding:
    return host_check(plan.host.name, check, status, observed, expected, fix)


def _unknown(res: Resolution | None, origin: str, plan: HostPlan) -> str:
    if res is None:
        return (f"vllm-ascend {plan.spec.connector.vllm_ascend_version} ({origin}) is not a "
                "release ascend-pd has facts for")
    return res.note or ""


def check_cann_version(facts: Facts, plan: HostPlan) -> Finding:
    cann = facts.get("cann.version", "absent") or "absent"
    res, origin = release_for(facts, plan)
    minimum = res.facts.compat.cann if res is not None and res.exact else None
    name = res.requested if res else plan.spec.connector.vllm_ascend_version
    expected = (f"CANN >= {minimum} (vllm-ascend {name}'s stable CANN)" if minimum
                else "CANN installed")
    fix = (f"Install CANN {minimum} or newer (toolkit and NNAL of the same version)."
           if minimum else "Install the CANN toolkit and NNAL.")
    if cann == "absent":
        return _result(plan, "cann-version", "fail",
                       "no ascend_toolkit_install.info or version.cfg", expected, fix)
    if minimum is None:
        why = _unknown(res, origin, plan) if res is None or not res.exact else (
            f"upstream's matrix has no CANN for vllm-ascend {name}")
        return _result(plan, "cann-version", "warn", f"CANN {cann}",
                       f"unknown minimum: {why}",
                       "Check the release notes of the installed vllm-ascend for its CANN.")
    have, need = _version(cann), _version(minimum)
    if have is None or need is None:
        return _result(plan, "cann-version", "warn", f"CANN {cann}: cannot compare", expected)
    if have < need:
        return _result(plan, "cann-version", "fail", f"CANN {cann}", expected, fix)
    return _result(plan, "cann-version", "pass", f"CANN {cann}", expected)


def check_python_version(facts: Facts, plan: HostPlan) -> Finding:
    python = facts.get("py.python", "absent") or "absent"
    res, origin = release_for(facts, plan)
    wanted = res.facts.compat.python if res is not None else None
    expected = f"Python {wanted} (vllm-ascend {res.basis})" if res and wanted else "Python 3"
    if plan.docker:
        return _result(plan, "python-version", "warn",
                       "not checked: runtime docker (Python lives in the image)", expected)
    if python == "absent" or res is None or wanted is None:
        return _result(plan, "python-version", "warn", f"python {python}", expected
                       if res else _unknown(res, origin, plan))
    try:
        ok = Version(python) in SpecifierSet(wanted)
    except (InvalidVersion, InvalidSpecifier):
        return _result(plan, "python-version", "warn", f"python {python}: cannot compare",
                       expected)
    if ok:
        return _result(plan, "python-version", "pass", f"python {python}", expected)
    return _result(plan, "python-version", "fail" if res.exact else "warn", f"python {python}",
                   expected + ("" if res.exact else f"; {res.note}"),
                   f"Use a Python in {wanted} (set ASCEND_PD_PYTHON in hosts[].env).")


def check_torch_npu_build(facts: Facts, plan: HostPlan) -> Finding:
    npu = installed(facts, "torch_npu")
    res, _origin = release_for(facts, plan)
    wanted = res.facts.compat.torch_npu if res is not None and res.exact else None
    expected = (f"torch-npu {wanted} (the build vllm-ascend {res.basis} names)"
                if res and wanted else "torch-npu the release names")
    if plan.docker or npu is None or wanted is None or res is None:
        why = "runtime docker" if plan.docker else (
            "torch-npu not installed" if npu is None else
            (res.note if res else None) or "no build named for this release")
        return _result(plan, "torch-npu-build", "warn", f"torch_npu {npu}: not compared ({why})",
                       expected)
    have, need = _version(npu), _version(wanted)
    if have is None or need is None or have == need:
        return _result(plan, "torch-npu-build", "pass", f"torch_npu {npu}", expected)
    fix = f"pip install torch-npu=={wanted} (and torch=={res.facts.compat.torch})."
    if have < need:
        return _result(plan, "torch-npu-build", "fail", f"torch_npu {npu}", expected, fix)
    return _result(plan, "torch-npu-build", "warn", f"torch_npu {npu} (newer build)",
                   expected, fix)


def _vllm_choices(text: str) -> list[str]:
    # The matrix may list alternatives: "v0.10.1/v0.10.1.1".
    return [c.strip().removeprefix("v") for c in text.split("/") if c.strip()]


def check_vllm_pair(facts: Facts, plan: HostPlan) -> Finding:
    vllm, ascend = installed(facts, "vllm"), installed(facts, "vllm_ascend")
    spec_version = plan.spec.connector.vllm_ascend_version
    if plan.docker or vllm is None or ascend is None:
        return _result(plan, "vllm-pair", "warn", f"vllm {vllm or 'absent'}, vllm_ascend "
                       f"{ascend or 'absent'}: cannot compare", "vllm matching vllm-ascend")
    observed = f"vllm {vllm}, vllm_ascend {ascend}"
    res, origin = release_for(facts, plan)
    if res is None or res.facts.compat.vllm is None or not res.exact:
        return _result(plan, "vllm-pair", "warn", observed,
                       f"vllm for vllm-ascend {ascend}: unknown ({_unknown(res, origin, plan)})",
                       "Install the vLLM the vllm-ascend release notes name.")
    choices = _vllm_choices(res.facts.compat.vllm)
    expected = f"vllm {' or '.join(choices)} for vllm-ascend {ascend} (upstream's matrix)"
    have = _version(vllm)
    if have is None or all(_version(c) is None or have.public != _version(c).public  # type: ignore[union-attr]
                           for c in choices):
        return _result(plan, "vllm-pair", "fail", observed, expected,
                       f"pip install vllm=={choices[0]} (VLLM_TARGET_DEVICE=empty), or the "
                       f"vllm-ascend release built for vllm {vllm}.")
    if _version(spec_version) != _version(ascend):
        return _result(plan, "vllm-pair", "warn", observed,
                       f"vllm-ascend {spec_version} (connector.vllm_ascend_version)",
                       f'Set connector.vllm_ascend_version: "{Version(ascend).public}": env '
                       "names and flags are rendered for it.")
    return _result(plan, "vllm-pair", "pass", observed, expected)


def _rendered_connectors(plan: HostPlan) -> tuple[tuple[str, ...], str | None]:
    """The kv_connector names the deployment plan renders (the plan is the one source)."""
    if plan.deploy is None:
        return (), plan.deploy_error or "the plan could not be built"
    names = {str(p.kv_transfer_config.get("kv_connector")) for p in plan.deploy.processes
             if p.kv_transfer_config}
    return tuple(sorted(names)), None


def check_connector(facts: Facts, plan: HostPlan) -> Finding:
    names, error = _rendered_connectors(plan)
    res, origin = release_for(facts, plan)
    if error is not None:
        return _result(plan, "connector", "fail", f"no deployment plan: {error}",
                       "a spec that renders", "Run `ascend-pd validate` and fix what it reports.")
    if res is None:
        return _result(plan, "connector", "warn", ", ".join(names),
                       _unknown(res, origin, plan))
    registered = sorted(res.facts.connectors)
    missing = [n for n in names if n not in res.facts.connectors]
    observed = f"{', '.join(names)} on vllm-ascend {res.requested} ({origin})"
    expected = f"registered in vllm-ascend {res.basis}: {', '.join(registered)}"
    if not missing:
        return _result(plan, "connector", "pass", observed, expected)
    fix = (f"{', '.join(missing)} is not registered in vllm-ascend {res.basis}: choose one of "
           f"{', '.join(registered)} in the spec's connector, or install a release that "
           "registers it.")
    if not res.exact:
        return _result(plan, "connector", "warn", observed, f"{expected} ({res.note})", fix)
    return _result(plan, "connector", "fail", observed, expected, fix)


def mooncake_installed(facts: Facts) -> str | None:
    """``name version`` of the Mooncake distribution found, else None."""
    for name in MOONCAKE_PACKAGES:
        version = installed(facts, name.replace("-", "_"))
        if version:
            return f"{name} {version}"
    return None


def mooncake_expected(facts: Facts, plan: HostPlan) -> str:
    res, _origin = release_for(facts, plan)
    row = res.facts.compat if res is not None else None
    if row is not None and row.mooncake_package:
        return row.mooncake_package + (f" {row.mooncake_version}" if row.mooncake_version else "")
    return " or ".join(MOONCAKE_PACKAGES)
