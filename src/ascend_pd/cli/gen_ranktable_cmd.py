"""`ascend-pd gen-ranktable`: the HCCL ranktable.json from one node, for A2 and A3."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import click

from ascend_pd.cli.legacy import (
    FlagHosts,
    LegacyCommand,
    device_counts,
    flag_ssh,
    layout_options,
    local_ids,
    parse_ids,
    reject_ips_with_spec,
    ssh_options,
)
from ascend_pd.cli.output import Progress, finish, table
from ascend_pd.cli.session import Session, backend_option, common, pass_session, spec_option
from ascend_pd.errors import UsageError
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.printer import Layout, finding_line, render_findings
from ascend_pd.ranktable import api, io
from ascend_pd.ranktable.collect import collect_facts
from ascend_pd.ranktable.facts import load_facts
from ascend_pd.ranktable.need import ranktable_unused
from ascend_pd.ranktable.plan import RanktablePlan, plan_from_flags, plan_from_spec
from ascend_pd.ranktable.push import PushResult, push_ranktable
from ascend_pd.runners.factory import make_host_runner, make_runner, tool_paths
from ascend_pd.spec.models import HostSpec, SSHSpec


class _GenRanktableCommand(LegacyCommand):
    GREEDY = ("--ips", "--from")


def _rows(result: api.RanktableResult) -> str:
    return table(["host", "role", "devices", "device IPs"], result.summary_rows())


@click.command("gen-ranktable", cls=_GenRanktableCommand)
@spec_option
@backend_option
@click.option("-o", "--output", "--ranktable-path", "output", type=click.Path(dir_okay=False),
              help="Where to write (default ./ranktable.json; facts file with --collect-only).")
@layout_options
@ssh_options
@click.option("--collect-only", is_flag=True,
              help="Air-gapped: write THIS host's device facts as JSON, build nothing.")
@click.option("--host", "host_name", help="With --collect-only and -c: which spec host this is.")
@click.option("--address", help="With --collect-only: this host's server_id IP.")
@click.option("--from", "from_files", multiple=True, type=click.Path(exists=True),
              help="Build from --collect-only files instead of reaching hosts.")
@click.option("--verify", "verify_path", type=click.Path(exists=True, dir_okay=False),
              help="Re-collect and diff against this ranktable; exit 1 on drift.")
@click.option("--push", is_flag=True,
              help="Also copy the table to connector.ranktable_path on every spec host.")
@common
@pass_session
def command(session: Session, /, **opts: Any) -> None:
    """Collect device IPs from every host in parallel and write ranktable.json (v1.2).

    \b
    From a spec:   ascend-pd gen-ranktable -c pd.yaml -o ranktable.json
    Legacy flags:  ascend-pd gen-ranktable --ips 10.0.0.1 10.0.0.2 --npus-per-node 8 \\
                     --network-card-name eth0 --prefill-device-cnt 8 --decode-device-cnt 8
    """
    progress = Progress("collecting", enabled=not session.json)
    if opts["collect_only"]:
        return _collect_only(session, opts)
    plan, runner_for, paths, nic_for, names = _setup(session, opts)
    if opts["verify_path"]:
        existing = io.read_ranktable(opts["verify_path"])
        checked = api.verify(existing, runner_for, paths, names=names,
                             on_done=progress.callback())
        progress.done()
        text = render_findings(checked.drifts, Layout()) or (
            f"{opts['verify_path']}: matches the live hosts")
        finish(session.json, "gen-ranktable", checked.to_dict(), text, 0 if checked.ok else 1)
        return None
    facts = None
    if opts["from_files"]:
        loaded = [load_facts(f) for f in opts["from_files"]]
        facts = {}
        by_addr = {r.address: r.name for r in plan.hosts}
        for item in loaded:
            name = item.host if item.host in by_addr.values() else by_addr.get(item.address)
            if name is None:
                raise UsageError(f"facts file for {item.host} ({item.address}) matches no host",
                                 hint="collect it with --host NAME / --address IP of the plan")
            facts[name] = item
    result = api.generate(plan, runner_for, paths, on_done=progress.callback(), facts=facts,
                          nic_for=nic_for)
    progress.done()
    out = Path(opts["output"] or "ranktable.json")
    io.write_ranktable(out, result.table)
    pushed = _push(session, out) if opts["push"] else []
    # A spec whose connector reads no rank table still gets one (a site may keep it for
    # other tools), with a warning that the deployment will not use it.
    unused = ranktable_unused(session.spec()) if session.spec_path is not None else None
    text = _rows(result) + f"\n\nwrote {out} ({result.table['server_count']} server(s), " \
        f"{len(result.table['prefill_device_list'])} prefill + " \
        f"{len(result.table['decode_device_list'])} decode devices)"
    if unused is not None:
        text += "\n" + finding_line(unused)
    copied = [f"{p.host}:{p.path}" for p in pushed if p.ok]
    failed = [p for p in pushed if not p.ok]
    if copied:
        text += "\ncopied to " + ", ".join(copied)
    for copy in failed:
        text += f"\nNOT copied to {copy.host}:{copy.path}: {copy.error}"
    if failed:
        text += (f"\n{len(failed)} of {len(pushed)} host(s) did not get the table; fix them "
                 "and run --push again (the other hosts already have it)")
    finish(session.json, "gen-ranktable", {**result.to_dict(), "path": str(out),
                                           "pushed": [p.to_dict() for p in pushed],
                                           "warnings": [unused.to_dict()] if unused else []},
           text, 3 if failed else 0)
    return None


def _setup(session: Session, opts: dict[str, Any]) -> tuple[
        RanktablePlan, Any, Any, Any, dict[str, str]]:
    if session.spec_path is not None:
        reject_ips_with_spec(opts)
        spec = session.spec()
        runner_for = session.runners()

        def paths(name: str) -> tuple[str, str]:
            return tool_paths(spec.host(name))

        names = {h.address: h.name for h in spec.hosts}
        return plan_from_spec(spec), runner_for, paths, None, names
    if not opts["ips"] and not opts["verify_path"]:
        raise UsageError("nothing to do: give -c pd.yaml, or --ips with the device counts",
                         hint="see `ascend-pd gen-ranktable --help`")
    flags = FlagHosts(list(opts["ips"]), flag_ssh(opts), session.resolved_backend())
    session.closers.append(flags.pool.close)
    nic = opts["network_card_name"]
    if opts["verify_path"]:
        return RanktablePlan(hosts=[]), flags.pool.get, flags.paths, None, {}
    plan = plan_from_flags(list(opts["ips"]), *device_counts(opts), local_ids(opts))
    return plan, flags.pool.get, flags.paths, (lambda _h: nic) if nic else None, {}


def _collect_only(session: Session, opts: dict[str, Any]) -> None:
    if session.spec_path is not None:
        spec = session.spec()
        if not opts["host_name"]:
            raise UsageError("--collect-only with -c needs --host NAME (this host in the spec)",
                             hint=f"one of: {', '.join(h.name for h in spec.hosts)}")
        known = [h.name for h in spec.hosts]
        if opts["host_name"] not in known:
            close = difflib.get_close_matches(opts["host_name"], known, n=1)
            raise UsageError(f"--host {opts['host_name']!r} is not a host of the spec",
                             hint=(f"did you mean {close[0]!r}? " if close else "")
                             + f"hosts: {', '.join(known)}")
        host = spec.host(opts["host_name"])
        plan = plan_from_spec(spec)
        plan.hosts = [r for r in plan.hosts if r.name == host.name] or plan.hosts[:0]
    else:
        if not opts["address"]:
            raise UsageError("--collect-only needs --address IP (this host's server_id)",
                             hint="or -c pd.yaml --host NAME")
        host = HostSpec(name=opts["address"], address=opts["address"])
        plan = plan_from_flags([host.address], 1, 1, parse_ids(opts["local_device_ids"]))
    # Collect-only runs ON the host being collected: local unless told otherwise.
    backend = "local" if session.backend is None else session.resolved_backend()
    runner = (make_runner(session.spec(), host.name, backend, spec_dir=session.spec_dir)
              if session.spec_path is not None else make_host_runner(host, SSHSpec(), backend))
    facts = collect_facts(plan, lambda _n: runner, lambda _n: tool_paths(host))
    item = facts[host.name]
    out = Path(opts["output"] or f"device-facts-{host.name}.json")
    atomic_write_text(out, json.dumps(item.to_dict(), indent=2) + "\n")
    text = (f"wrote {out}: {host.name} ({item.soc or 'unknown SoC'}), "
            f"{len(item.devices)} device(s)" + (f"; error: {item.error}" if item.error else ""))
    finish(session.json, "gen-ranktable", {"path": str(out), "facts": item.to_dict()}, text,
           1 if item.error else 0)


def _push(session: Session, path: Path) -> list[PushResult]:
    return push_ranktable(session.spec(), path.read_text(), session.runners())
