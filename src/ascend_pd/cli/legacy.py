"""The legacy gen_ranktable.sh flags, shared by gen-ranktable and check-links.

``--ips A B C`` (space-separated, as the old script took them), the device-count flags, the
SSH flags for hosts that are only known by IP, and the runner pool over those hosts.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import click

from ascend_pd.errors import UsageError
from ascend_pd.runners.factory import make_host_runner, tool_paths
from ascend_pd.runners.fanout import RunnerPool
from ascend_pd.spec.models import HostSpec, SSHSpec

F = TypeVar("F", bound=Callable[..., Any])


class LegacyCommand(click.Command):
    """Accept ``--ips A B C`` besides repeated ``--ips A --ips B`` (see ``GREEDY``)."""

    #: options that take several space-separated values
    GREEDY: ClassVar[tuple[str, ...]] = ("--ips",)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(args):
            if args[i] in self.GREEDY:
                opt = args[i]
                i += 1
                while i < len(args) and not args[i].startswith("-"):
                    out += [opt, args[i]]
                    i += 1
                continue
            out.append(args[i])
            i += 1
        return super().parse_args(ctx, out)


def parse_ids(text: str | None) -> list[int] | None:
    """``--local-device-ids 0,1,2`` -> [0, 1, 2]; None when not given."""
    if not text:
        return None
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError as exc:
        raise UsageError(f"--local-device-ids {text!r} is not a comma-separated id list",
                         hint="e.g. --local-device-ids 0,1,2,3") from exc


def local_ids(opts: dict[str, Any]) -> list[int] | None:
    """Devices per node from --local-device-ids, else the first --npus-per-node ids."""
    ids = parse_ids(opts["local_device_ids"])
    if ids is None and opts.get("npus_per_node"):
        ids = list(range(opts["npus_per_node"]))
    return ids


def reject_ips_with_spec(opts: dict[str, Any]) -> None:
    """-c SPEC and the legacy --ips describe the same hosts twice: refuse the mix."""
    if opts["ips"]:
        raise UsageError("give either -c SPEC or --ips, not both",
                         hint="the spec already lists the hosts")
    if opts.get("network_card_name"):
        raise UsageError("give either -c SPEC or --network-card-name, not both",
                         hint="the spec names each host's NIC in hosts[].nic")


def device_counts(opts: dict[str, Any]) -> tuple[int, int]:
    """(--prefill-device-cnt, --decode-device-cnt), both required with --ips."""
    if opts["prefill_device_cnt"] is None or opts["decode_device_cnt"] is None:
        raise UsageError("--ips needs --prefill-device-cnt and --decode-device-cnt",
                         hint="e.g. --prefill-device-cnt 8 --decode-device-cnt 8")
    return int(opts["prefill_device_cnt"]), int(opts["decode_device_cnt"])


def flag_ssh(opts: dict[str, Any]) -> SSHSpec:
    """SSH settings from the flags, then ASCEND_PD_SSH_* variables, then defaults."""
    return SSHSpec(
        user=opts["ssh_user"] or os.environ.get("ASCEND_PD_SSH_USER", "root"),
        port=opts["ssh_port"] or int(os.environ.get("ASCEND_PD_SSH_PORT", "22")),
        key=opts["ssh_key"] or os.environ.get("ASCEND_PD_SSH_KEY"),
        known_hosts=opts["known_hosts"] or os.environ.get("ASCEND_PD_KNOWN_HOSTS",
                                                          "~/.ssh/known_hosts"),
        host_key_policy=opts["host_key_policy"],
    )


class FlagHosts:
    """Hosts known only by IP (name = address) and a runner pool reaching them."""

    def __init__(self, ips: list[str], ssh: SSHSpec, backend: str) -> None:
        for ip in ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise UsageError(f"--ips {ip}: not an IPv4 or IPv6 address",
                                 hint="give the hosts' IP addresses: --ips 192.0.2.11") from None
        self.hosts = {ip: HostSpec(name=ip, address=ip) for ip in ips}
        self.pool = RunnerPool(lambda name: make_host_runner(self.host(name), ssh, backend))

    def host(self, name: str) -> HostSpec:
        return self.hosts.get(name) or HostSpec(name=name, address=name)

    def paths(self, name: str) -> tuple[str, str]:
        """(hccn_tool, npu-smi) for ``name``: HCCN_TOOL_PATH env or the defaults."""
        return tool_paths(self.host(name))


#: the flags of vllm-ascend's examples/disaggregated_prefill_v1/gen_ranktable.sh, which
#: gen-ranktable and check-links both take (a copied invocation works with either)
LEGACY_FLAGS = ("--ips", "--npus-per-node", "--network-card-name", "--prefill-device-cnt",
                "--decode-device-cnt", "--local-device-ids")


def layout_options(func: F) -> F:
    """The gen_ranktable.sh flags (``LEGACY_FLAGS``)."""
    for option in reversed((
        click.option("--ips", multiple=True, help="Legacy: node IPs, prefill nodes first."),
        click.option("--npus-per-node", type=int,
                     help="Legacy: devices taken per node (default all)."),
        click.option("--network-card-name",
                     help="Legacy: the NIC that must carry each node IP."),
        click.option("--prefill-device-cnt", type=int,
                     help="Legacy: leading devices for prefill."),
        click.option("--decode-device-cnt", type=int, help="Legacy: next devices for decode."),
        click.option("--local-device-ids",
                     help="Legacy: only these device ids on each node (0,1,..)."),
    )):
        func = option(func)
    return func


def ssh_options(func: F) -> F:
    """--ssh-user/--ssh-port/--ssh-key/--known-hosts/--host-key-policy for --ips hosts."""
    for option in reversed((
        click.option("--ssh-user", help="SSH user for --ips hosts (env ASCEND_PD_SSH_USER)."),
        click.option("--ssh-port", type=int, help="SSH port (env ASCEND_PD_SSH_PORT)."),
        click.option("--ssh-key", help="SSH private key (env ASCEND_PD_SSH_KEY)."),
        click.option("--known-hosts", help="known_hosts file (env ASCEND_PD_KNOWN_HOSTS)."),
        click.option("--host-key-policy", type=click.Choice(["strict", "accept-new"]),
                     default="strict", show_default=True),
    )):
        func = option(func)
    return func
