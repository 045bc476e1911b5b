"""`ascend-pd check-links`: per-device hccn_tool checks and P↔D pings on every host."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from ascend_pd.cli.legacy import (
    FlagHosts,
    LegacyCommand,
    device_counts,
    flag_ssh,
    layout_options,
    local_ids,
    reject_ips_with_spec,
)
from ascend_pd.cli.legacy import ssh_options as legacy_ssh_options
from ascend_pd.cli.output import Progress, finish
from ascend_pd.cli.session import Session, backend_option, common, pass_session, spec_option
from ascend_pd.errors import UsageError
from ascend_pd.netcheck import (
    CheckOptions,
    Targets,
    check_network,
    targets_from_flags,
    targets_from_ranktable,
    targets_from_spec,
)
from ascend_pd.netcheck.fix import FixMode, fix_tls, tls_changes
from ascend_pd.netcheck.html import check_links_html, write_html
from ascend_pd.netcheck.nic import nic_findings
from ascend_pd.netcheck.run import ToolsFor
from ascend_pd.ranktable.io import read_ranktable
from ascend_pd.runners.factory import tool_paths


def _fix_mode(text: str | None) -> FixMode | None:
    if text is None:
        return None
    if text in ("tls", "tls=off"):
        return "off"
    if text == "tls=majority":
        return "majority"
    raise UsageError(f"unknown --fix '{text}'", hint="use --fix tls or --fix tls=majority")


@click.command("check-links", cls=LegacyCommand)
@spec_option
@backend_option
@click.option("--ranktable", "ranktable_path", type=click.Path(exists=True, dir_okay=False),
              help="Check the hosts/devices of this ranktable and that its device IPs are live.")
@layout_options
@legacy_ssh_options
@click.option("--ping", "ping_mode", default="auto", show_default=True,
              help="Ping plan: full | plane | sample:N | auto (full up to 1024 P×D pairs).")
@click.option("--transport", type=click.Choice(["auto", "roce", "hccs"]), default="auto",
              show_default=True, help="auto: A2 -ping (RoCE), A3 -hccs_ping (vNIC).")
@click.option("--require-lldp", is_flag=True, help="A missing LLDP neighbour is a fault.")
@click.option("--fix", "fix_text", metavar="tls|tls=majority",
              help="Set TLS off on every device (or to the majority value), then re-check.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before --fix changes devices.")
@click.option("--per-host", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Commands in flight per host.")
@click.option("--max-hosts", type=click.IntRange(1, 1024), default=64, show_default=True,
              help="Hosts worked on at once.")
@click.option("--timeout", "query_timeout", type=click.FloatRange(0.1), default=10.0,
              show_default=True, help="Seconds per hccn_tool query.")
@click.option("--ping-timeout", type=click.FloatRange(0.1), default=20.0, show_default=True,
              help="Seconds per ping.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of sample:N.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report (heatmap, grid, fixes) to FILE.")
@click.option("--tcp-timeout", type=click.FloatRange(0.1), default=3.0, show_default=True,
              help="platform cuda: seconds per TCP connect of the reachability matrix.")
@click.option("--after-launch", is_flag=True,
              help="platform cuda: a planned port nobody listens on is a fault (run after "
                   "launch), not a warning.")
@common
@pass_session
def command(session: Session, /, **opts: Any) -> None:
    """Check link, health, netdetect, gateway, IPs, TLS and LLDP of every device, and ping
    every prefill device from every decode device it exchanges KV with (and back).

    \b
    From a spec:    ascend-pd check-links -c pd.yaml
    A ranktable:    ascend-pd check-links -c pd.yaml --ranktable ranktable.json
    Legacy flags:   ascend-pd check-links --ips 10.0.0.1 10.0.0.2 --npus-per-node 8 \\
                      --network-card-name eth0 --prefill-device-cnt 8 --decode-device-cnt 8
    (the gen_ranktable.sh flags; --network-card-name also checks each IP is on that NIC)
    Exit: 0 all pass, 1 findings, 2 usage error, 3 no host reachable.
    """
    if session.spec_path is not None and session.spec().platform != "ascend":
        _check_tcp(session, opts)
        return
    fix_mode = _fix_mode(opts["fix_text"])
    if fix_mode is not None and session.json and not opts["yes"]:
        raise UsageError("--fix with --json cannot ask for confirmation", hint="add --yes")
    targets, runner_for, tools = _setup(session, opts)
    options = CheckOptions(
        ping=opts["ping_mode"], transport=opts["transport"], require_lldp=opts["require_lldp"],
        max_hosts=opts["max_hosts"], per_host=opts["per_host"],
        query_timeout_s=opts["query_timeout"], ping_timeout_s=opts["ping_timeout"],
        seed=opts["seed"],
        # Mooncake on A3 moves KV over HCCS inside a super pod: compare spod-info.
        spod=targets.source != "flags" and session.spec().connector.type == "mooncake")
    progress = Progress("check-links", enabled=not session.json)

    def on_progress(phase: str, done: int, total: int) -> None:
        progress.update(done, total, phase)

    report = check_network(targets, runner_for, tools, options=options, on_progress=on_progress)
    progress.done()
    if fix_mode is not None:
        target, changes = tls_changes(report, fix_mode)
        hosts = len({h for h, _ in changes})
        question = (f"Set TLS enable {target} on {len(changes)} device(s) of {hosts} host(s) "
                    f"(hccn_tool -i N -tls -s enable {target})?")
        if changes and (opts["yes"] or click.confirm(question, default=False, err=True)):
            report = fix_tls(report, targets, runner_for, tools, mode=fix_mode,
                             options=options, on_progress=on_progress)
            progress.done()
    nic = opts["network_card_name"]
    if nic:
        nodes = [(h.name, h.address) for h in targets.hosts]
        report.add("nic", nic_findings(nodes, nic, runner_for, max_hosts=opts["max_hosts"]),
                   len(nodes))
    human = report.human()
    if opts["html_path"]:
        command_line = shlex.join(["ascend-pd", *sys.argv[1:]])
        path = write_html(opts["html_path"],
                          check_links_html(report, command_line, report.exit_code))
        human += f"\nHTML report: {path}"
    finish(session.json, "check-links", report.to_dict(), human, report.exit_code)


def _check_tcp(session: Session, opts: dict[str, Any]) -> None:
    """platform cuda (or cpu): no NPU network to query; the TCP matrix between the plan's
    hosts."""
    from ascend_pd.netcheck.tcp import TcpOptions, check_tcp
    from ascend_pd.render.plan import build_plan

    reject_ips_with_spec(opts)
    npu_only = [flag for flag, given in (("--ranktable", opts["ranktable_path"]),
                                         ("--fix", opts["fix_text"]),
                                         ("--html", opts["html_path"]),
                                         ("--require-lldp", opts["require_lldp"]))
                if given]
    if npu_only:
        raise UsageError(f"{', '.join(npu_only)}: NPU checks, not for platform "
                         f"{session.spec().platform}",
                         hint="platform cuda runs the TCP reachability matrix only "
                              "(docs/check-links.md, CUDA hosts)")
    if session.resolved_backend() == "sim":
        raise UsageError("the TCP matrix opens real connections; backend sim has no hosts "
                         "to connect from", hint="use --backend local or ssh")
    progress = Progress("check-links", enabled=not session.json)
    report = check_tcp(
        build_plan(session.spec()), session.runners(),
        options=TcpOptions(connect_timeout_s=opts["tcp_timeout"], max_hosts=opts["max_hosts"],
                           per_host=opts["per_host"], expect_listening=opts["after_launch"]),
        on_progress=lambda phase, done, total: progress.update(done, total, phase))
    progress.done()
    finish(session.json, "check-links", report.to_dict(), report.human(), report.exit_code)


def _setup(session: Session, opts: dict[str, Any]) -> tuple[Targets, Any, ToolsFor]:
    table = read_ranktable(opts["ranktable_path"]) if opts["ranktable_path"] else None
    if session.spec_path is not None:
        reject_ips_with_spec(opts)
        spec = session.spec()
        runner_for = session.runners()
        names = {h.address: h.name for h in spec.hosts}
        targets = targets_from_spec(spec) if table is None else targets_from_ranktable(
            table, names)
        unknown = [h.name for h in targets.hosts if h.name not in names.values()]
        if unknown:
            raise UsageError(f"ranktable server_id(s) {', '.join(unknown)} are not spec hosts",
                             hint="regenerate the ranktable for this spec, or drop -c")
        return targets, runner_for, lambda name: tool_paths(spec.host(name))
    if not opts["ips"] and table is None:
        raise UsageError("nothing to check: give -c pd.yaml, --ranktable FILE, or --ips "
                         "with the device counts", hint="see `ascend-pd check-links --help`")
    if opts["ips"]:
        targets = targets_from_flags(list(opts["ips"]), *device_counts(opts), local_ids(opts))
    else:
        assert table is not None
        targets = targets_from_ranktable(table)
    flags = FlagHosts([h.name for h in targets.hosts], flag_ssh(opts),
                      session.resolved_backend())
    session.closers.append(flags.pool.close)
    return targets, flags.pool.get, flags.paths
