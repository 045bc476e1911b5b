"""`ascend-pd sim ...`: create a sim cluster file, install the stand-in tools, inject faults.

The group is open: other modules add commands with ``command.add_command(...)``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, common, pass_session
from ascend_pd.errors import UsageError
from ascend_pd.fsutil import atomic_write_text
from ascend_pd.sim.cluster import dump_cluster, generate_cluster
from ascend_pd.sim.faults import FAULT_KINDS, apply_fault
from ascend_pd.sim.install import install_tools
from ascend_pd.sim.state import reset_state


@click.group("sim")
def command() -> None:
    """Simulated Ascend nodes: sim cluster files, stand-in hccn_tool / npu-smi, faults."""


def _parse_hosts(values: tuple[str, ...]) -> list[tuple[str, str]]:
    hosts = []
    for value in values:
        name, sep, address = value.partition("=")
        if not sep or not name or not address:
            raise UsageError(f"--host {value!r} is not NAME=ADDRESS",
                             hint="e.g. --host p0=192.0.0.1 --host d0=192.0.0.2")
        hosts.append((name, address))
    return hosts


@command.command("init-cluster")
@click.option("--host", "hosts", multiple=True, required=True, metavar="NAME=ADDRESS",
              help="A simulated host (repeat for each host, in order).")
@click.option("--soc", type=click.Choice(["a2", "a3"]), default="a2", show_default=True,
              help="a2 = 8 x 910B per host; a3 = 8 cards x 2 dies per host.")
@click.option("--devices", type=int, help="Devices per host (default 8 on a2, 16 on a3).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the cluster file here (default: print it).")
@click.option("--force", is_flag=True, help="Overwrite an existing file (and reset its state).")
@common
@pass_session
def init_cluster(session: Session, hosts: tuple[str, ...], soc: str, devices: int | None,
                 output: str | None, force: bool) -> None:
    """Write a healthy sim cluster file with realistic RoCE / vNIC / SDID addressing."""
    try:
        cluster = generate_cluster(_parse_hosts(hosts), soc,  # type: ignore[arg-type]
                                   devices)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    text = dump_cluster(cluster)
    if output:
        atomic_write_text(output, text, overwrite=force)
        reset_state(output)
    count = sum(len(h.devices) for h in cluster.hosts)
    human = (f"wrote {output}: {len(cluster.hosts)} {soc} host(s), {count} devices"
             if output else text.rstrip("\n"))
    data = {"path": output, "soc": soc, "hosts": [h.name for h in cluster.hosts],
            "devices": count, "cluster": None if output else cluster.to_data()}
    finish(session.json, "sim init-cluster", data, human, 0)


@command.command("install-tools")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--cluster", type=click.Path(dir_okay=False),
              help="Bake this ASCEND_PD_SIM_CLUSTER default into the scripts.")
@click.option("--host", "host", help="Bake this ASCEND_PD_SIM_HOST default into the scripts.")
@common
@pass_session
def install(session: Session, dest: str, cluster: str | None, host: str | None) -> None:
    """Write DEST/hccn_tool, DEST/npu-smi and DEST/nvidia-smi wrappers that run the
    simulated tools."""
    paths = install_tools(dest, cluster=cluster, host=host)
    data = {name: str(path) for name, path in paths.items()}
    human = "\n".join(f"wrote {path}" for path in data.values())
    if not (cluster and host):
        human += "\nset ASCEND_PD_SIM_CLUSTER and ASCEND_PD_SIM_HOST before running them"
    finish(session.json, "sim install-tools", data, human, 0)


@command.command("fault")
@click.option("--cluster", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The sim cluster file to change.")
@click.option("--host", "host", required=True, help="Simulated host name.")
@click.option("--device", type=int, help="Physical device id (default: every device); the "
                                         "GPU slot for gpu-missing.")
@click.option("--kind", required=True, type=click.Choice(FAULT_KINDS), help="What breaks.")
@click.option("--value", help="net-health STATE | busy N | ping-loss ADDR[:LOST] | "
                              "hang KIND | latency-* SECONDS | gpu-driver DRIVER/CUDA | "
                              "nvml-mismatch LIBRARY_VERSION.")
@click.option("--clear", is_flag=True, help="Remove the fault (restore the original value).")
@common
@pass_session
def fault(session: Session, cluster: str, host: str, device: int | None, kind: str,
          value: str | None, clear: bool) -> None:
    """Inject or clear a fault on a simulated host or device."""
    result = apply_fault(Path(cluster), host, kind, device=device, value=value, clear=clear)
    where = "host" if not result.devices else "devices " + ",".join(map(str, result.devices))
    verb = "cleared" if clear else "injected"
    finish(session.json, "sim fault", result.to_dict(),
           f"{verb} {kind}{'=' + value if value else ''} on {host} ({where})", 0)


def _attach_serve() -> None:
    # `ascend-pd sim serve` (the simulated vLLM server) lives in its own module.
    from ascend_pd.cli.sim_serve_cmd import command as serve

    command.add_command(serve)


_attach_serve()
