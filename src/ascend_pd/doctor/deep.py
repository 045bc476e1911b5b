"""``doctor --deep``: check the deployment plan against the code *installed* on each host.

The harvester's extractor (:mod:`ascend_pd.releases.harvest.extract`, stdlib only) is sent to
the host as ``python3 -c <source> --installed`` through the runner seam. It locates
``vllm_ascend`` and ``vllm`` without importing them (no torch), reads their source with
``ast`` and prints JSON: the connectors registered, the env names the connectors read, the
``additional_config`` keys (and whether unknown ones are rejected), vLLM's env names and
``vllm serve`` flags. The checks below compare that with every env var, kv_connector,
``additional_config`` key and flag the plan renders for the host's processes. A release newer
than the harvested data is checked all the same: nothing here depends on the data file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from ascend_pd.doctor.checks import Status
from ascend_pd.findings import Finding, host_check
from ascend_pd.releases.harvest import extract
from ascend_pd.render.plan import ProcessPlan
from ascend_pd.spec.models import ClusterSpec

#: Reading a few hundred source files with ast on a busy host.
DEEP_TIMEOUT_S: Final[float] = 120.0
_ABORT = re.compile(r"ABORT_REQUEST_TIMEOUT$")
_RPC = re.compile(r"LLMDD_RPC_PORT$")


@lru_cache(maxsize=1)
def scanner_source() -> str:
    """The extractor's source, as shipped to hosts (the same code the harvester runs)."""
    return Path(extract.__file__).read_text(encoding="utf-8")


def scanner_argv(spec: ClusterSpec, host_name: str) -> tuple[str, ...]:
    python = spec.host(host_name).env.get("ASCEND_PD_PYTHON", "python3")
    return (python, "-c", scanner_source(), "--installed")


def _check(host: str, name: str, problems: list[tuple[Status, str]], ok: str, expected: str,
           fix: str) -> Finding:
    if not problems:
        return host_check(host, name, "pass", ok, expected)
    status: Status = "fail" if any(s == "fail" for s, _ in problems) else "warn"
    return host_check(host, name, status, "; ".join(m for _, m in problems), expected, fix)


def _flag_value(argv: Sequence[str], flag: str) -> str | None:
    for i, token in enumerate(argv):
        if token == flag and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def check_connectors(host: str, ascend: dict[str, Any], procs: Iterable[ProcessPlan]
                     ) -> Finding:
    registered = {c["name"]: c for c in ascend["connectors"]}
    problems: list[tuple[Status, str]] = []
    names = sorted({str(p.kv_transfer_config.get("kv_connector")) for p in procs
                    if p.kv_transfer_config})
    for name in names:
        if name not in registered:
            problems.append(("fail", f"kv_connector {name} is not registered by the installed "
                                     f"vllm-ascend {ascend.get('version') or '?'}"))
    pd = sorted(c["name"] for c in ascend["connectors"] if c["pd"] == "yes")
    return _check(host, "deep-connector", problems, ", ".join(names) + " registered",
                  f"a P/D connector the installed code registers: {', '.join(pd)}",
                  "Choose a registered connector in the spec (connector.type / "
                  "mooncake_connector), or install a vllm-ascend that registers it.")


def check_env(host: str, ascend: dict[str, Any], vllm: dict[str, Any] | None,
              procs: Iterable[ProcessPlan]) -> Finding:
    problems: list[tuple[Status, str]] = []
    ascend_env = set(ascend["env_vars"])
    vllm_env = set(vllm["env_vars"]) if vllm else None
    families = {str(p.kv_transfer_config.get("kv_connector", "")) for p in procs
                if p.kv_transfer_config}
    reads = {
        "abort": [ascend[k] for k in ("mooncake_abort_timeout_env", "llmdd_abort_timeout_env")
                  if ascend[k][0]],
        "rpc": [ascend["llmdd_rpc_port_env"]] if ascend["llmdd_rpc_port_env"][0] else [],
    }
    names = sorted({n for p in procs for n in p.env})
    for name in names:
        kind = "abort" if _ABORT.search(name) else "rpc" if _RPC.search(name) else None
        if kind is not None:
            wanted = [w for w, _src in reads[kind]]
            if name not in wanted:
                where = ", ".join(f"{w} ({src})" for w, src in reads[kind]) or "nothing"
                problems.append(("fail", f"{name} is set, but the installed connector code "
                                         f"({', '.join(sorted(families))}) reads {where}: "
                                         "the value is lost"))
        elif name.startswith("VLLM_ASCEND_") and name not in ascend_env:
            problems.append(("warn", f"{name} is not defined in the installed vllm_ascend/envs.py"))
        elif name.startswith("VLLM_") and vllm_env is not None and name not in (
            vllm_env | ascend_env
        ):
            problems.append(("warn", f"{name} is read by neither the installed vLLM nor "
                                     "vllm-ascend (ignored)"))
    vllm_note = "" if vllm_env is not None else " (vLLM not found: VLLM_* names unchecked)"
    return _check(host, "deep-env", problems,
                  f"{len(names)} env var(s) consistent with the installed code{vllm_note}",
                  "every VLLM_* variable the plan sets is one the installed code reads",
                  "Set the connector.vllm_ascend_version the host runs (names are rendered "
                  "for it), or drop the variable from hosts[].env / instance env.")


def check_additional_config(host: str, ascend: dict[str, Any], procs: Iterable[ProcessPlan]
                            ) -> Finding:
    keys = set(ascend["additional_config_keys"])
    strict = ascend["additional_config_strict"]
    problems: list[tuple[Status, str]] = []
    seen: set[str] = set()
    for proc in procs:
        raw = _flag_value(proc.argv, "--additional-config")
        if raw is None:
            continue
        try:
            config = json.loads(raw)
        except ValueError:
            problems.append(("fail", f"{proc.name}: --additional-config is not JSON"))
            continue
        for key in sorted(config) if isinstance(config, dict) else []:
            seen.add(key)
            if key in keys:
                continue
            if strict:
                problems.append(("fail", f"{proc.name}: additional_config key {key!r} is "
                                         f"rejected (extra=\"forbid\" at {strict}): the "
                                         "server does not start"))
            else:
                problems.append(("warn", f"{proc.name}: additional_config key {key!r} is not "
                                         "read by the installed vllm-ascend (silently ignored)"))
    return _check(host, "deep-additional-config", problems,
                  f"{len(seen)} key(s) read by the installed code",
                  "every additional_config key is one the installed vllm-ascend reads",
                  "Remove the key from the instance's additional_config (torchair_graph_config "
                  "exists only up to 0.11.x; later releases use aclgraph via "
                  "--compilation-config).")


def _normal(flag: str) -> str:
    # vLLM's parser accepts --max_num_seqs for --max-num-seqs.
    return flag.split("=", 1)[0].replace("_", "-")


def check_serve_flags(host: str, vllm: dict[str, Any] | None, procs: Iterable[ProcessPlan]
                      ) -> Finding:
    expected = "every `vllm serve` flag the plan renders is one the installed vLLM defines"
    if vllm is None:
        return host_check(host, "deep-serve-flags", "warn", "vLLM not found by the host's "
                           "python: flags not checked", expected,
                           "Set ASCEND_PD_PYTHON in hosts[].env to the serving interpreter.")
    known = {_normal(f) for f in vllm["serve_flags"]}
    problems: list[tuple[Status, str]] = []
    flags = sorted({_normal(t) for p in procs for t in p.argv if t.startswith("--")})
    for flag in flags:
        if flag in known or flag.replace("--no-", "--", 1) in known:
            continue
        problems.append(("fail", f"{flag} is not a `vllm serve` option of the installed vLLM "
                                 f"{vllm.get('version') or '?'}"))
    return _check(host, "deep-serve-flags", problems,
                  f"{len(flags)} flag(s) defined by vLLM {vllm.get('version') or '?'}", expected,
                  "Drop or rename the flag (instance extra_args), or set the release the host "
                  "runs in connector.vllm_ascend_version.")


def truth_checks(host: str, installed: dict[str, Any], procs: Sequence[ProcessPlan]
                 ) -> list[Finding]:
    """Pure: the plan's processes on ``host`` against the scanner's JSON from that host."""
    ascend = installed.get("vllm_ascend")
    if not ascend:
        return [host_check(host, "deep-installed", "fail",
                            f"vllm_ascend not found by python {installed.get('python', '?')}",
                            "vllm-ascend installed for the serving interpreter",
                            "Install vllm-ascend, or set ASCEND_PD_PYTHON in hosts[].env.")]
    vllm = installed.get("vllm") or None
    return [
        host_check(host, "deep-installed", "pass",
                    f"vllm_ascend {ascend.get('version') or '?'}, vllm "
                    f"{vllm.get('version') if vllm else 'absent'} (read from source)",
                    "the installed code readable"),
        check_connectors(host, ascend, procs),
        check_env(host, ascend, vllm, procs),
        check_additional_config(host, ascend, procs),
        check_serve_flags(host, vllm, procs),
    ]
