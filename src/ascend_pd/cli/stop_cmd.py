"""`ascend-pd stop`: SIGTERM, grace period, SIGKILL; proxy first."""

from __future__ import annotations

import click

from ascend_pd.cli.k8s_target import stop_k8s_cmd, target_options
from ascend_pd.cli.output import finish, table
from ascend_pd.cli.session import Session, backend_option, common, pass_session, spec_option
from ascend_pd.launch import api


@click.command("stop")
@spec_option
@backend_option
@click.option("--role", type=click.Choice(["prefill", "decode", "proxy", "all"]), default="all",
              show_default=True)
@click.option("--host", help="Only this spec host.")
@click.option("--instance", help="Only this instance (a name from the spec, or NAME@HOST).")
@click.option("--grace", "grace_s", type=int, default=20, show_default=True,
              help="Seconds between SIGTERM and SIGKILL.")
@target_options
@common
@pass_session
def command(session: Session, target: str, deploy_dir: str, kubectl: str,
            role: str, host: str | None, instance: str | None,
            grace_s: int) -> None:
    """Stop instances (whole process groups, so no orphans are left)."""
    if target == "k8s":
        stop_k8s_cmd(session, kubectl=kubectl)
        return
    spec = session.spec()
    states = api.stop(spec, session.runners(), role=role, host=host, instance=instance,  # type: ignore[arg-type]
                      grace_s=grace_s)
    rows = [(s.name, s.host, s.role, s.action, s.pid or "", s.error or "") for s in states]
    ok = not any(s.error for s in states)
    finish(session.json, "stop", {"ok": ok, "units": [s.to_dict() for s in states]},
           table(["instance", "host", "role", "result", "pid", "error"], rows), 0 if ok else 1)
