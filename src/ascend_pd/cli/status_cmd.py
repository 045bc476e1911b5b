"""`ascend-pd status`: what runs where, alive and ready."""

from __future__ import annotations

import time

import click

from ascend_pd.cli.k8s_target import status_k8s_cmd, target_options
from ascend_pd.cli.output import finish, table
from ascend_pd.cli.session import Session, backend_option, common, pass_session, spec_option
from ascend_pd.launch import api


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


@click.command("status")
@spec_option
@backend_option
@click.option("--role", type=click.Choice(["prefill", "decode", "proxy", "all"]), default="all")
@click.option("--host", help="Only this spec host.")
@click.option("--instance", help="Only this instance (a name from the spec, or NAME@HOST).")
@click.option("--wait", "wait_s", type=click.FloatRange(0, 3600), default=0.0, show_default=True,
              help="Seconds to keep asking until every unit is ready (e.g. while the proxy "
                   "readmits a restarted instance after its health checks).")
@target_options
@common
@pass_session
def command(session: Session, target: str, deploy_dir: str, kubectl: str,
            role: str, host: str | None, instance: str | None, wait_s: float) -> None:
    """Show host, role, pid, alive, ready, port, uptime and last log line of every instance."""
    if target == "k8s":
        status_k8s_cmd(session, kubectl=kubectl)
        return
    spec = session.spec()
    runners = session.runners()
    deadline = time.monotonic() + wait_s
    while True:
        states = api.status(spec, runners, role=role, host=host,  # type: ignore[arg-type]
                            instance=instance)
        # Bounded: at most --wait seconds, one status round a second.
        if all(s.ready for s in states) or time.monotonic() + 1.0 > deadline:
            break
        time.sleep(1.0)
    rows = [(s.name, s.host, s.role, s.pid or "", "yes" if s.alive else "no",
             "yes" if s.ready else "no", s.port or "-", _uptime(s.uptime_s),
             (s.error or s.last_line)[:60]) for s in states]
    text = table(["instance", "host", "role", "pid", "alive", "ready", "port", "uptime",
                  "last log line"], rows)
    ok = all(s.ready for s in states)
    finish(session.json, "status", {"ok": ok, "units": [s.to_dict() for s in states]}, text,
           0 if ok else 1)
