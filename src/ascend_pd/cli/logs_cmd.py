"""`ascend-pd logs`: tail or follow one instance's log."""

from __future__ import annotations

import click

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, backend_option, common, pass_session, spec_option
from ascend_pd.launch import api


@click.command("logs")
@spec_option
@backend_option
@click.argument("name")
@click.option("-n", "--lines", type=int, default=50, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
@common
@pass_session
def command(session: Session, name: str, lines: int, follow: bool) -> None:
    """Show the log of NAME (an instance, `instance@host`, or `proxy`)."""
    spec = session.spec()
    runner_for = session.runners()
    if follow and not session.json:
        try:
            click.echo(api.logs(spec, runner_for, name, lines=lines), nl=False)
            api.logs(spec, runner_for, name, lines=0, follow=True,
                     emit=lambda text: click.echo(text, nl=False))
        except KeyboardInterrupt:
            pass
        return
    text = api.logs(spec, runner_for, name, lines=lines)
    finish(session.json, "logs", {"name": name, "text": text}, text.rstrip("\n"), 0)
