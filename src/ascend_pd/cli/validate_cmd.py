"""`ascend-pd validate`: check a spec (and, with the render checks, the P/D plan)."""

from __future__ import annotations

import click

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, common, pass_session, spec_option
from ascend_pd.validate import validate_spec


@click.command("validate")
@spec_option
@common
@pass_session
def command(session: Session) -> None:
    """Validate a cluster spec: keys, hosts, devices, sizes, ports and P/D consistency."""
    report = validate_spec(session.spec())
    finish(session.json, "validate", report.to_dict(), report.render(), report.exit_code)
