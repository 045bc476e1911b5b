"""`ascend-pd launch`: start prefill, decode and proxy processes on their hosts."""

from __future__ import annotations

import click

from ascend_pd.cli.k8s_target import launch_k8s_cmd, target_options
from ascend_pd.cli.output import Progress, finish, table
from ascend_pd.cli.session import Session, backend_option, common, pass_session, spec_option
from ascend_pd.errors import LaunchError
from ascend_pd.launch import api

ROLES = click.Choice(["prefill", "decode", "proxy", "all"])


@click.command("launch")
@spec_option
@backend_option
@click.option("--role", type=ROLES, default="all", show_default=True,
              help="What to start; `all` starts prefill and decode, then the proxy.")
@click.option("--host", help="Only this spec host.")
@click.option("--instance", help="Only this instance (a name from the spec, or NAME@HOST).")
@click.option("--dry-run", is_flag=True, help="Render and show what would start; start nothing.")
@click.option("--timeout", "timeout_s", type=float, default=900.0, show_default=True,
              help="Seconds to wait for each instance to become ready.")
@click.option("--python", help="Interpreter for simulated servers (default: this one).")
@target_options
@common
@pass_session
def command(session: Session, target: str, deploy_dir: str, kubectl: str,
            role: str, host: str | None, instance: str | None,
            dry_run: bool, timeout_s: float,
            python: str | None) -> None:
    """Start instances detached (pid + log in state_dir) and wait until each is ready."""
    if target == "k8s":
        launch_k8s_cmd(session, deploy_dir=deploy_dir, kubectl=kubectl, dry_run=dry_run,
                       timeout_s=timeout_s)
        return
    spec = session.spec()
    progress = Progress("launch", enabled=not session.json)
    result = api.launch(spec, session.runners(), role=role, host=host, instance=instance,  # type: ignore[arg-type]
                        dry_run=dry_run, spec_path=str(session.spec_path),
                        python=python, ready_timeout_s=timeout_s, progress=progress.step)
    rows = [(u.name, u.role, u.action, u.pid, "yes" if u.ready else "no", u.port,
             (u.error or u.last_line).splitlines()[0] if (u.error or u.last_line) else "")
            for u in result.units]
    text = table(["instance", "role", "action", "pid", "ready", "port", "note"], rows)
    for unit in result.units:
        if unit.error:
            text += f"\n\n{unit.name}: {unit.error}"
    # A unit that did not come up is a launch failure (exit 7), whichever role was asked for.
    finish(session.json, "launch", result.to_dict(), text,
           0 if result.ok else LaunchError.exit_code)
