"""`ascend-pd validate`: check a spec (and, with the render checks, the P/D plan)."""

from __future__ import annotations

import click

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, common, pass_session, spec_option
from ascend_pd.validate import validate_spec


@click.command("validate")
@spec_option
@click.option("--target", type=click.Choice(["ssh", "k8s"]), default="ssh", show_default=True,
              help="k8s: also the Kubernetes rules (docs/kubernetes.md).")
@common
@pass_session
def command(session: Session, target: str) -> None:
    """Validate a cluster spec: keys, hosts, devices, sizes, ports and P/D consistency."""
    report = validate_spec(session.spec(), target=target)
    finish(session.json, "validate", report.to_dict(), report.render(), report.exit_code)
