"""P/D consistency checks over the deployment plan, listed in :data:`PLAN_CHECKS`.

Each check is ``(plan) -> list[Finding]`` and reads the one plan of the command (its spec,
version, processes, port plan); ``ascend_pd.validate`` runs the list. Errors make a
deployment fail (or silently misbehave) on real hardware, warnings are settings that are
ignored or risky.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from ascend_pd.findings import Finding, at_key, check_id, tagged
from ascend_pd.releases import ReleaseFacts, known_releases, load
from ascend_pd.render.args import PLAN_OWNED, arg_problems, flag_values
from ascend_pd.render.findings import ValidationReport
from ascend_pd.render.plan import DeploymentPlan, shared_hosts
from ascend_pd.render.ports import random_range
from ascend_pd.render.preflight import preflight
from ascend_pd.render.upstream_checks import (
    check_hybrid_dp,
    check_p2p_nccl,
    check_router,
    check_upstream_version,
)
from ascend_pd.spec.loader import with_line
from ascend_pd.spec.models import UPSTREAM_CONNECTORS, ClusterSpec, InstanceSpec

Check = Callable[[DeploymentPlan], list[Finding]]

_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: per-instance flags that must agree between prefill and decode, and their spec default
_SHARED_FLAGS: Final = ("--model", "--served-model-name", "--kv-cache-dtype", "--block-size",
                        "--quantization", "--dtype")


def _instances(spec: ClusterSpec) -> Iterator[tuple[str, InstanceSpec]]:
    for role, items in (("prefill", spec.prefill), ("decode", spec.decode)):
        for i, inst in enumerate(items):
            yield f"{role}[{i}]", inst


def check_release(plan: DeploymentPlan) -> list[Finding]:
    """The version resolves to known release facts (said when they are another release's)."""
    spec = plan.spec
    if spec.platform != "ascend" or spec.connector.type in UPSTREAM_CONNECTORS:
        return _check_upstream_connector(spec)
    key = "connector.vllm_ascend_version"
    if plan.release_error is not None:
        return [at_key("error", key, plan.release_error.message, plan.release_error.hint)]
    assert plan.release is not None
    if plan.release.note:
        return [at_key("warning", key, plan.release.note,
                        "write the release installed on the hosts (`pip show vllm-ascend`); "
                        f"known: {_span(known_releases())}")]
    return []


def check_connector(plan: DeploymentPlan) -> list[Finding]:
    """The release registers the connector the spec asks for."""
    spec, facts = plan.spec, plan.facts
    if facts is None:
        return []
    text = plan.release.basis if plan.release else plan.vllm_ascend_version
    if spec.connector.type == "llmdatadist":
        if any(c.family == "llmdatadist" for c in facts.connectors.values()):
            return []
        return [at_key("error", "connector.type",
                        f"vllm-ascend {text} has no LLMDataDist connector and reads no rank "
                        "table", "use type: mooncake (no gen-ranktable step), or a release "
                        "that ships LLMDataDist: "
                        + _span(_releases_with(lambda f: f.reads_ranktable)))]
    name = spec.connector.mooncake_connector
    if facts.connector(name) is not None:
        return []
    mooncake = sorted(c.name for c in facts.connectors.values() if c.family == "mooncake")
    return [at_key("error", "connector.mooncake_connector",
                    f"vllm-ascend {text} does not register {name}"
                    + (f" (it has {', '.join(mooncake)})" if mooncake else ""),
                    "pick one it registers, or a release that has it: "
                    + (_span(_releases_with(lambda f: f.connector(name) is not None))
                       or "none known"))]


def _releases_with(pred: Callable[[ReleaseFacts], bool]) -> list[str]:
    return [r.version for r in load().releases if pred(r)]


def _span(versions: list[str]) -> str:
    """Known releases, short: ``a, b`` or ``first … last`` (in release order)."""
    return ", ".join(versions) if len(versions) <= 3 else f"{versions[0]} … {versions[-1]}"


def _check_upstream_connector(spec: ClusterSpec) -> list[Finding]:
    # vllm-ascend's version is irrelevant on cuda / cpu: upstream vLLM ships the connectors.
    if spec.platform == "ascend":
        return [at_key("error", "connector.type",
                       f"the {spec.connector.type} connector is upstream vLLM's (platform "
                       "cuda or cpu)", "on Ascend use type: mooncake (or llmdatadist on "
                       "0.11.x)")]
    out = []
    if spec.connector.type not in UPSTREAM_CONNECTORS:
        out.append(at_key("error", "connector.type",
                           f"{spec.connector.type} is a vllm-ascend connector; platform "
                           f"{spec.platform} runs upstream vLLM",
                           "use type: nixl (or p2pnccl on cuda, or storage)"))
    if spec.model.quantization == "ascend":
        out.append(at_key("error", "model.quantization",
                           f"ascend (W8A8 msmodelslim) weights need NPUs, not {spec.platform}",
                           "use quantization: none and bf16 weights"))
    return out


def check_extra_args(plan: DeploymentPlan) -> list[Finding]:
    """extra_args are a well-formed argv and leave plan-owned flags alone."""
    out: list[Finding] = []
    for key, inst in _instances(plan.spec):
        out += arg_problems(inst.extra_args, f"{key}.extra_args")
        for flag in flag_values(inst.extra_args):
            if flag in PLAN_OWNED:
                out.append(at_key("error", f"{key}.extra_args",
                                   f"'{flag}' is set by the plan from {PLAN_OWNED[flag]}",
                                   f"remove '{flag}' from extra_args and set it in the spec"))
    return out


def _effective(spec: ClusterSpec, inst: InstanceSpec) -> dict[str, str]:
    model = spec.model
    values = {"--model": model.path, "--served-model-name": model.served_name,
              "--kv-cache-dtype": model.kv_cache_dtype,
              "--block-size": str(model.block_size) if model.block_size else "default",
              "--quantization": model.quantization, "--dtype": model.dtype or "auto"}
    for flag, value in flag_values(inst.extra_args).items():
        if flag in values and value is not None:
            values[flag] = value
    return values


def check_model_consistency(plan: DeploymentPlan) -> list[Finding]:
    """P and D serve the same model under the same name, with the same KV cache layout."""
    spec = plan.spec
    out: list[Finding] = []
    instances = list(_instances(spec))
    first_key, first = instances[0]
    reference = _effective(spec, first)
    for key, inst in instances[1:]:
        values = _effective(spec, inst)
        for flag in _SHARED_FLAGS:
            if values[flag] != reference[flag]:
                out.append(at_key(
                    "error", f"{key}.extra_args",
                    f"{flag} is '{values[flag]}' here but '{reference[flag]}' on "
                    f"'{first.name}' ({first_key}); prefill and decode must agree",
                    f"set it once in model: instead of per-instance {flag}"))
    return out


def check_parallelism(plan: DeploymentPlan) -> list[Finding]:
    """P/D TP ratios the connector can transfer, and TP groups inside one host."""
    spec = plan.spec
    out: list[Finding] = []
    if spec.connector.type in UPSTREAM_CONNECTORS:
        return out  # upstream vLLM's rules: render.upstream_checks
    mooncake = spec.connector.type == "mooncake"
    if mooncake:
        for role, items in (("prefill", spec.prefill), ("decode", spec.decode)):
            sizes = {(i.tp, i.dp) for i in items}
            if len(sizes) > 1:
                out.append(at_key(
                    "error", role,
                    f"{role} instances differ in tp/dp {sorted(sizes)}; Mooncake's "
                    f"kv_connector_extra_config holds one {role} size",
                    f"give every {role} instance the same tp and dp"))
    for i, p in enumerate(spec.prefill):
        for d in spec.decode:
            key = f"prefill[{i}].tp"
            pair = f"prefill '{p.name}' tp={p.tp}, decode '{d.name}' tp={d.tp}"
            if p.tp < d.tp:
                out.append(at_key("error", key, f"{pair}: prefill TP must be >= decode TP",
                                   "D ranks pull from P ranks; raise P tp or lower D tp"))
            elif mooncake and p.tp % d.tp:
                out.append(at_key("error", key, f"{pair}: P tp must be a multiple of D tp",
                                   "use e.g. P tp 8 with D tp 1, 2, 4 or 8"))
            elif (not mooncake and spec.model.attention in ("gqa", "mha")
                  and p.tp != d.tp):
                out.append(at_key(
                    "error", key,
                    f"{pair}: LLMDataDist needs equal TP for {spec.model.attention} models",
                    "use the same tp on prefill and decode (or attention: mla if it is MLA)"))
    if not mooncake:
        for key, inst in _instances(spec):
            if inst.dp_mode == "external" and inst.dp > 1:
                out.append(at_key(
                    "error", f"{key}.dp_mode",
                    "external DP is rendered for Mooncake only (LLMDataDist derives its RPC "
                    "ports from the local DP rank, which external DP makes global)",
                    "use dp_mode: internal with LLMDataDist"))
            if inst.tp > len(inst.devices):
                out.append(at_key(
                    "error", f"{key}.tp",
                    f"tp={inst.tp} spans hosts ({len(inst.devices)} devices per host); "
                    "LLMDataDist keeps a TP group inside one host",
                    "lower tp and use dp across hosts"))
    return out


def _walk_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _walk_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_keys(item)


def check_stale_settings(plan: DeploymentPlan) -> list[Finding]:
    """Env vars and flags this vllm-ascend release ignores (they fail silently)."""
    spec, facts = plan.spec, plan.facts
    out: list[Finding] = []
    envs = [(f"hosts[{i}].env", h.env) for i, h in enumerate(spec.hosts)]
    envs += [(f"{key}.env", inst.env) for key, inst in _instances(spec)]
    for key, env in envs:
        for name in env:
            if not _ENV_NAME.match(name):
                out.append(at_key("error", key, f"'{name}' is not an environment variable name",
                                   "use letters, digits and _ (not starting with a digit)"))
            elif facts is not None and spec.platform == "ascend":
                out.extend(_env_findings(plan, facts, f"{key}.{name}", name))
    if facts is None:
        return out
    text = facts.version
    if not facts.use_ascend_direct or spec.connector.type != "mooncake":
        for key, inst in _instances(spec):
            if ("use_ascend_direct" in _walk_keys(inst.additional_config)
                    or any("use_ascend_direct" in a for a in inst.extra_args)):
                out.append(at_key(
                    "warning", key,
                    f"use_ascend_direct is not read by Mooncake on vllm-ascend {text}",
                    "remove it; the renderer adds it where the release reads it"))
    abort = (facts.llmdd_abort_timeout_env if spec.connector.type == "llmdatadist"
             else facts.mooncake_abort_timeout_env)
    if spec.connector.abort_request_timeout_s is not None and abort is None:
        out.append(at_key(
            "warning", "connector.abort_request_timeout_s",
            f"vllm-ascend {text} has no P-side KV expiry for this connector; blocks of "
            "requests whose decode fails are never freed", "use a newer release"))
    return out


def _env_findings(plan: DeploymentPlan, facts: ReleaseFacts, key: str,
                  name: str) -> list[Finding]:
    """A variable another known release reads but this one does not, or an RPC-port override."""
    text = facts.version
    rpc_env = facts.llmdd_rpc_port_env
    if name.endswith("LLMDD_RPC_PORT") and rpc_env and name != rpc_env:
        return [at_key("error", key,
                        f"vllm-ascend {text} reads {rpc_env}, so {name} is silently ignored "
                        "and every instance binds the default 5557",
                        "remove it; the renderer sets the right variable from "
                        "connector.rpc_port_base")]
    if name == rpc_env:
        return [at_key("warning", key,
                        "overrides the port plan; instances sharing a host may get the same "
                        "range", "remove it and set connector.rpc_port_base instead")]
    if name in facts.env_vars or name in _renamed_abort(facts):
        return []
    readers = _releases_with(lambda f: name in f.env_vars)
    if not readers:
        return []
    return [at_key("warning", key,
                    f"vllm-ascend {text} does not read {name} (read by {_span(readers)})",
                    "remove it, or use what this release reads instead")]


def _renamed_abort(facts: ReleaseFacts) -> set[str]:
    # The abort timeout is read from vLLM's envs, not vllm-ascend's: never "unknown" here.
    return {n for n in (facts.mooncake_abort_timeout_env, facts.llmdd_abort_timeout_env) if n}


def check_graph_mode(plan: DeploymentPlan) -> list[Finding]:
    """torchair where the release has none; additional_config keys the release does not read."""
    facts = plan.facts
    if facts is None:
        return []
    text = facts.version
    out: list[Finding] = []
    for key, inst in _instances(plan.spec):
        if inst.torchair_graph and not facts.torchair:
            out.append(at_key(
                "warning", f"{key}.torchair_graph",
                f"vllm-ascend {text} has no torchair graph mode (removed in 0.12.0rc1); "
                "decode runs ACL graph (cudagraph_mode FULL_DECODE_ONLY) instead",
                "remove torchair_graph"))
        for name in inst.additional_config:
            if name in facts.additional_config_keys:
                continue
            if facts.additional_config_strict:
                out.append(at_key(
                    "error", f"{key}.additional_config.{name}",
                    f"vllm-ascend {text} rejects unknown additional_config keys "
                    "(extra=\"forbid\"): the server would not start",
                    "remove it" + (" and use ACL graph (the renderer's default)"
                                   if name == "torchair_graph_config" else "")))
            else:
                out.append(at_key(
                    "warning", f"{key}.additional_config.{name}",
                    f"vllm-ascend {text} does not read '{name}'; it is silently ignored",
                    "remove it"))
    return out


def check_ports(plan: DeploymentPlan) -> list[Finding]:
    """The whole port plan is clash-free and Mooncake stays clear of the random range."""
    spec = plan.spec
    out: list[Finding] = []
    for first, second in plan.ports.clashes():
        out.append(at_key("error", second.key,
                           f"{second.label()} overlaps {first.label()}",
                           f"move {second.key} or {first.key}"))
    for claim in plan.ports.claims:
        if claim.end - 1 > 65535:
            out.append(at_key("error", claim.key, f"{claim.label()} goes past port 65535",
                               "lower the base port"))
        if "Mooncake" in claim.what:
            low, high = random_range(spec, spec.host(claim.host))
            if claim.start < high and low < claim.end:
                out.append(at_key(
                    "error", claim.key,
                    f"{claim.label()} is inside the transfer engine's random range "
                    f"{low}-{high - 1}", f"set connector.kv_port_base >= {high}"))
    return out


def check_proxy(plan: DeploymentPlan) -> list[Finding]:
    """The proxy targets exactly the API-serving (DP head) processes."""
    if plan.release is None:
        return []  # no processes were planned; check_release reports why
    if plan.proxy is None:
        return [at_key("warning", "proxy", "no proxy: clients must run the P→D hand-off",
                        "add proxy: {host: <host>, port: 8000}")]
    serving = {f"{p.role}:{p.address}:{p.api_port}" for p in plan.processes if p.head}
    out = []
    for role, targets in (("prefill", plan.proxy.prefill), ("decode", plan.proxy.decode)):
        for target in targets:
            address, _, port = target.rpartition(":")
            if f"{role}:{address.strip('[]')}:{port}" not in serving:
                out.append(at_key("error", "proxy", f"{role} target {target} has no API "
                                   "server (a headless DP host or no instance)",
                                   "point the proxy only at DP-head hosts"))
        if not targets:
            out.append(at_key("error", "proxy", f"the proxy has no {role} target",
                               f"add a {role} instance"))
    return out


def check_same_host(plan: DeploymentPlan) -> list[Finding]:
    """Hosts running both P and D keep HCCL_INTRA_ROCE_ENABLE=1 (#4866)."""
    spec = plan.spec
    out = []
    shared = shared_hosts(spec)
    for key, inst in _instances(spec):
        value = inst.env.get("HCCL_INTRA_ROCE_ENABLE")
        if value not in (None, "1") and shared.intersection(inst.hosts):
            out.append(at_key("error", f"{key}.env.HCCL_INTRA_ROCE_ENABLE",
                               f"is '{value}' but prefill and decode share a host",
                               "remove it; the renderer sets 1 on shared hosts"))
    return out


#: every P/D check, in report order (``ascend_pd.validate.validate_plan`` runs them)
def check_field_failures(plan: DeploymentPlan) -> list[Finding]:
    """The preflights for failures users hit in 2026 (``render.preflight``)."""
    return preflight(plan.spec, plan)


PLAN_CHECKS: Final[tuple[Check, ...]] = (
    check_release, check_connector, check_extra_args, check_model_consistency,
    check_parallelism, check_stale_settings, check_graph_mode, check_ports, check_proxy,
    check_same_host, check_field_failures, check_upstream_version, check_p2p_nccl,
    check_hybrid_dp, check_router,
)


def run_checks(plan: DeploymentPlan, checks: Iterable[Check]) -> list[Finding]:
    """Run ``checks`` over ``plan``: each finding gets its check's id (the function name
    without ``check_``) and, when the spec came from a file, its key's YAML line."""
    return [with_line(plan.spec, f) for check in checks
            for f in tagged(check_id(check), check(plan))]


def validate_plan(plan: DeploymentPlan) -> ValidationReport:
    """Run every check of :data:`PLAN_CHECKS` over ``plan``."""
    return ValidationReport(plan.name, run_checks(plan, PLAN_CHECKS))
