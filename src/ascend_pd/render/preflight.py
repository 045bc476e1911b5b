"""Preflight checks on the deployment plan for failures users hit in 2026.

Each check is ``(spec, plan) -> list[Finding]`` and reads the built plan (the environment
and docker argv every process will really get), so it warns about what launch would start,
not about what the spec seems to say. They prevent failures that ``ascend-pd diagnose``
recognises afterwards (the catalogue id is named in each function):

* Mooncake with an ``LD_LIBRARY_PATH`` set in the spec without ``/usr/local/lib`` ->
  ``ascend_transport.so: cannot open shared object file`` (vllm-project/vllm-ascend#6949, PR #7242).
* Mooncake without ``ASCEND_CONNECT_TIMEOUT`` -> ``Connect timeout … ASCEND_CONNECT_TIMEOUT``
  / status 103902 on large clusters (vllm-ascend#7401; PR #11876 sets 60000/10000 ms).
* Mooncake AscendDirect on A2 without ``ASCEND_BUFFER_POOL=0:0`` and
  ``HCCL_INTRA_ROCE_ENABLE=1`` (kvcache-ai/Mooncake#3749).
* A container without ``/etc/hccn.conf`` or ``hccn_tool`` -> the server starts and then
  answers garbage, ``[RanktablCheck] 'device ip' is not set correctly`` (vllm-ascend#7711).

The Mooncake kv_port rule (kv_port at or above ``20000 + 1000 x NPUs``, PR #6455) is
already an error of ``render.checks.check_ports`` (the claim overlaps the random range), so
it is not repeated here. Simulated deployments (``sim:``) run no Mooncake and no container,
so every check is silent for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from ascend_pd.findings import Finding, at_key, check_id, tagged
from ascend_pd.render.docker import HCCN_CONF
from ascend_pd.render.plan import DeploymentPlan, ProcessPlan
from ascend_pd.spec.models import ClusterSpec

#: where Mooncake's pip wheel installs ascend_transport.so's dependencies
MOONCAKE_LIB_DIR: Final[str] = "/usr/local/lib"
#: the values vllm-ascend PR #11876 renders for the Mooncake transfer engine (ms)
CONNECT_TIMEOUT_MS: Final[str] = "60000"
TRANSFER_TIMEOUT_MS: Final[str] = "10000"

Preflight = Callable[[ClusterSpec, DeploymentPlan], list[Finding]]


def _env_key(spec: ClusterSpec, proc: ProcessPlan) -> str:
    """The spec key to add an instance's environment to: ``prefill[i].env``."""
    items = spec.prefill if proc.role == "prefill" else spec.decode
    index = next(i for i, inst in enumerate(items) if inst.name == proc.instance)
    return f"{proc.role}[{index}].env"


def _mooncake_processes(spec: ClusterSpec, plan: DeploymentPlan) -> Iterator[ProcessPlan]:
    """Real (not simulated) Mooncake processes, one per instance (they share the env keys)."""
    if plan.sim or spec.connector.type != "mooncake":
        return
    seen: set[str] = set()
    for proc in plan.processes:
        if proc.instance not in seen:
            seen.add(proc.instance)
            yield proc


def check_mooncake_library_path(spec: ClusterSpec, plan: DeploymentPlan) -> list[Finding]:
    """Mooncake's ascend_transport.so must be loadable (diagnose: mooncake-transport-so)."""
    out = []
    for proc in _mooncake_processes(spec, plan):
        # Only a value the spec sets replaces the host's own LD_LIBRARY_PATH (CANN's
        # set_env.sh builds that one); the plan cannot see the host's, doctor can.
        if "LD_LIBRARY_PATH" not in proc.env:
            continue
        path = proc.env["LD_LIBRARY_PATH"]
        if MOONCAKE_LIB_DIR not in path.split(":"):
            out.append(at_key(
                "warning", _env_key(spec, proc),
                f"{proc.instance}: LD_LIBRARY_PATH does not contain {MOONCAKE_LIB_DIR}; "
                "Mooncake then fails with 'ascend_transport.so: cannot open shared object "
                "file' (vllm-ascend#6949)",
                f"add LD_LIBRARY_PATH: <CANN lib dirs>:{MOONCAKE_LIB_DIR}:"
                "<site-packages>/mooncake to the instance env"))
    return out


def check_mooncake_connect_timeout(spec: ClusterSpec, plan: DeploymentPlan) -> list[Finding]:
    """The transfer engine's connect timeout is set (diagnose: mooncake-connect-timeout)."""
    out = []
    for proc in _mooncake_processes(spec, plan):
        if "ASCEND_CONNECT_TIMEOUT" not in proc.env:
            out.append(at_key(
                "warning", _env_key(spec, proc),
                f"{proc.instance}: ASCEND_CONNECT_TIMEOUT is unset; large clusters hit "
                "'Connect timeout … ASCEND_CONNECT_TIMEOUT' / status 103902 (vllm-ascend#7401)",
                f"set ASCEND_CONNECT_TIMEOUT: '{CONNECT_TIMEOUT_MS}' and "
                f"ASCEND_TRANSFER_TIMEOUT: '{TRANSFER_TIMEOUT_MS}' (vllm-ascend PR #11876)"))
    return out


def check_mooncake_a2_env(spec: ClusterSpec, plan: DeploymentPlan) -> list[Finding]:
    """AscendDirect on A2 needs two variables (kvcache-ai/Mooncake#3749)."""
    if spec.hardware != "a2":
        return []
    want = {"ASCEND_BUFFER_POOL": "0:0", "HCCL_INTRA_ROCE_ENABLE": "1"}
    out = []
    for proc in _mooncake_processes(spec, plan):
        wrong = [f"{k}={v}" for k, v in want.items() if proc.env.get(k) != v]
        if wrong:
            out.append(at_key(
                "warning", _env_key(spec, proc),
                f"{proc.instance}: Mooncake AscendDirect on A2 fails without "
                f"{' and '.join(wrong)} (kvcache-ai/Mooncake#3749)",
                "set " + ", ".join(f"{k}: '{v}'" for k, v in want.items())
                + " in the instance env"))
    return out


def check_container_mounts(spec: ClusterSpec, plan: DeploymentPlan) -> list[Finding]:
    """Every container sees /etc/hccn.conf and hccn_tool (diagnose: hccn-conf-not-mounted)."""
    out = []
    index = {host.name: i for i, host in enumerate(spec.hosts)}
    for proc in plan.processes:
        argv = proc.docker_argv or []
        mounts = [argv[k + 1].split(":")[0] for k, arg in enumerate(argv[:-1]) if arg == "-v"]
        missing = [] if HCCN_CONF in mounts else [HCCN_CONF]
        if not any(m.endswith("/hccn_tool") for m in mounts):
            missing.append("hccn_tool")
        if argv and missing:
            out.append(at_key(
                "error", f"hosts[{index[proc.host]}].docker",
                f"{proc.name}: the container does not mount {' and '.join(missing)}; vLLM "
                "starts, then HCCL has no device IPs and the output is wrong "
                "(vllm-ascend#7711)",
                f"mount them read-only, e.g. -v {HCCN_CONF}:{HCCN_CONF}:ro"))
    return out


#: every preflight check, in report order (the validate check list runs these)
PREFLIGHT_CHECKS: Final[tuple[Preflight, ...]] = (
    check_mooncake_library_path,
    check_mooncake_connect_timeout,
    check_mooncake_a2_env,
    check_container_mounts,
)


def preflight(spec: ClusterSpec, plan: DeploymentPlan) -> list[Finding]:
    """Run every preflight check over a built plan."""
    return [f for check in PREFLIGHT_CHECKS for f in tagged(check_id(check), check(spec, plan))]
