"""Cross-field rules of the spec: host references, device ownership, sizes and ports.

Each rule returns findings (``ascend_pd.findings``, check ``spec``) naming the key path.
"""

from __future__ import annotations

import difflib

from ascend_pd.findings import Finding
from ascend_pd.spec.loader import Loc, format_path
from ascend_pd.spec.models import ClusterSpec


def _problem(loc: Loc, message: str, hint: str | None = None) -> Finding:
    """A spec error about the key at ``loc`` (the loader adds its YAML line)."""
    return Finding(severity="error", check="spec", key=format_path(loc), message=message,
                   fix=hint or "")


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean '{close[0]}'?" if close else f"known hosts: {', '.join(known)}"


def check_spec(spec: ClusterSpec) -> list[Finding]:
    """Return every cross-field problem of ``spec`` (empty when it is consistent)."""
    problems: list[Finding] = []
    problems += _check_hosts(spec)
    problems += _check_instances(spec)
    problems += _check_ports(spec)
    return problems


def _check_hosts(spec: ClusterSpec) -> list[Finding]:
    out: list[Finding] = []
    seen_names: dict[str, int] = {}
    seen_addr: dict[str, int] = {}
    for i, host in enumerate(spec.hosts):
        if host.name in seen_names:
            out.append(_problem(("hosts", i, "name"),
                               f"host name '{host.name}' is also hosts[{seen_names[host.name]}]",
                               "give every host a unique name"))
        seen_names.setdefault(host.name, i)
        if host.address in seen_addr:
            out.append(_problem(
                ("hosts", i, "address"),
                f"address {host.address} is also hosts[{seen_addr[host.address]}].address",
                "each host needs its own address: it becomes the ranktable server_id",
            ))
        seen_addr.setdefault(host.address, i)
        if host.runtime == "docker" and host.docker is None:
            out.append(_problem(("hosts", i, "runtime"), "runtime is docker but no docker: section",
                               "add docker: {image: <vllm-ascend image>}"))
        if spec.hardware == "a2" and any(d > 7 for d in host.devices) and len(host.devices) > 8:
            out.append(_problem(("hosts", i, "devices"),
                               f"{len(host.devices)} devices on an A2 host (A2 has 8)",
                               "set hardware: a3 for 910_93 servers"))
    return out


def _check_instances(spec: ClusterSpec) -> list[Finding]:
    out: list[Finding] = []
    names = [h.name for h in spec.hosts]
    owner: dict[tuple[str, int], str] = {}
    seen: dict[str, str] = {}
    for role, instances in (("prefill", spec.prefill), ("decode", spec.decode)):
        for i, inst in enumerate(instances):
            base: Loc = (role, i)
            if inst.name in seen:
                out.append(_problem((*base, "name"), f"instance name '{inst.name}' is used twice",
                                   "instance names must be unique across prefill and decode"))
            seen.setdefault(inst.name, role)
            if len(set(inst.devices)) != len(inst.devices):
                out.append(_problem((*base, "devices"), "device ids repeat"))
            if len(set(inst.hosts)) != len(inst.hosts):
                out.append(_problem((*base, "hosts"), "a host is listed twice"))
            for j, host_name in enumerate(inst.hosts):
                if host_name not in names:
                    out.append(_problem((*base, "hosts", j), f"unknown host '{host_name}'",
                                       _suggest(host_name, names)))
                    continue
                host = spec.host(host_name)
                missing = [d for d in inst.devices if d not in host.devices]
                if missing:
                    out.append(_problem(
                        (*base, "devices"),
                        f"device(s) {missing} are not on host '{host_name}' "
                        f"(it has {host.devices})",
                        f"use devices from hosts[{names.index(host_name)}].devices",
                    ))
                clashes: dict[str, list[int]] = {}
                for dev in inst.devices:
                    key = (host_name, dev)
                    if key in owner and owner[key] != inst.name:
                        clashes.setdefault(owner[key], []).append(dev)
                    owner.setdefault(key, inst.name)
                for other, devs in clashes.items():
                    out.append(_problem(
                        (*base, "devices"),
                        f"device(s) {devs} on host '{host_name}' are already used by "
                        f"instance '{other}'",
                        "give each instance its own devices (ASCEND_RT_VISIBLE_DEVICES)",
                    ))
            total = len(inst.hosts) * len(inst.devices)
            if inst.tp * inst.dp != total:
                out.append(_problem(
                    (*base, "tp"),
                    f"tp×dp = {inst.tp}×{inst.dp} = {inst.tp * inst.dp} but the instance has "
                    f"{total} devices ({len(inst.hosts)} host(s) × {len(inst.devices)})",
                    "make tp × dp equal hosts × devices",
                ))
            elif inst.dp % len(inst.hosts) != 0:
                out.append(_problem(
                    (*base, "dp"),
                    f"dp={inst.dp} cannot be split evenly over {len(inst.hosts)} hosts",
                    "use a dp that is a multiple of the number of hosts",
                ))
    return out


def _check_ports(spec: ClusterSpec) -> list[Finding]:
    out: list[Finding] = []
    names = [h.name for h in spec.hosts]
    listeners: dict[tuple[str, int], str] = {}

    def claim(host: str, port: int, what: str, loc: Loc) -> None:
        key = (host, port)
        if key in listeners:
            out.append(_problem(loc, f"port {port} on host '{host}' is also {listeners[key]}",
                               "pick a free port for one of them"))
        else:
            listeners[key] = what

    for role, instances in (("prefill", spec.prefill), ("decode", spec.decode)):
        for i, inst in enumerate(instances):
            if inst.head not in names:
                continue
            claim(inst.head, inst.port, f"the API port of '{inst.name}'", (role, i, "port"))
            if inst.dp > 1:
                claim(inst.head, inst.dp_rpc_port, f"the DP RPC port of '{inst.name}'",
                      (role, i, "dp_rpc_port"))
    if spec.proxy is not None:
        if spec.proxy.host not in names:
            out.append(_problem(("proxy", "host"), f"unknown host '{spec.proxy.host}'",
                               _suggest(spec.proxy.host, names)))
        else:
            claim(spec.proxy.host, spec.proxy.port, "the proxy port", ("proxy", "port"))
    return out
