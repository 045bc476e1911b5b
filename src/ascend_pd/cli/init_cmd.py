"""`ascend-pd init`: write a commented example spec."""

from __future__ import annotations

import click

from ascend_pd import examples
from ascend_pd.cli.output import envelope, print_json
from ascend_pd.cli.session import Session, common, pass_session
from ascend_pd.fsutil import atomic_write_text


@click.command("init")
@click.option("--shape", type=click.Choice(examples.shapes()), default=examples.DEFAULT_SHAPE,
              show_default=True,
              help="Which example topology to write (all but the *-legacy-* shape use Mooncake "
                   "on the newest stable vllm-ascend release).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (default: stdout).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@common
@pass_session
def command(session: Session, shape: str, output: str | None, force: bool) -> None:
    """Write a commented example cluster spec (pd.yaml) for a known shape."""
    text = examples.example_spec(shape)
    if output:
        atomic_write_text(output, text, overwrite=force)
    if session.json:
        print_json(envelope("init", {"shape": shape, "path": output,
                                     "spec": None if output else text}, 0))
    elif output:
        click.echo(f"wrote {output} ({shape}); next: ascend-pd validate -c {output}")
    else:
        click.echo(text, nl=False)
