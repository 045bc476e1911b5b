"""The ``ascend-pd`` command line: thin commands over the library, one error boundary."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from ascend_pd import __version__
from ascend_pd.cli.output import envelope, print_error, print_json
from ascend_pd.cli.session import Session
from ascend_pd.errors import AscendPDError

log = logging.getLogger("ascend_pd")


class App(click.Group):
    """Root group that turns AscendPDError into one message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AscendPDError as err:
            session = ctx.find_object(Session) or Session()
            log.debug("error detail", exc_info=err)
            name = ctx.invoked_subcommand or "ascend-pd"
            if session.json:
                print_json(envelope(name, None, err.exit_code, [err.to_dict()]))
            else:
                print_error(err)
            ctx.exit(err.exit_code)
        finally:
            found = ctx.find_object(Session)
            if found is not None:
                found.close()


@click.group(cls=App, context_settings={"help_option_names": ["-h", "--help"],
                                        "max_content_width": 100})
@click.version_option(__version__, prog_name="ascend-pd")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Deploy Prefill/Decode-disaggregated vLLM-Ascend on Ascend NPU hosts, checking each step.

    Typical flow (Mooncake, every current vllm-ascend release): init → validate → doctor →
    check-links → render → launch → status. LLMDataDist (vllm-ascend <= 0.11.x, the only
    connector that reads a rank table) adds gen-ranktable before render.
    Every command takes --json. Exit codes: docs/exit-codes.md.
    """
    session = ctx.ensure_object(Session)
    session.verbose = verbose
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


#: One module per command, each exposing `command` (listed one per line: merges stay trivial).
COMMAND_MODULES = (
    "init_cmd",
    "validate_cmd",
    "render_cmd",
    "launch_cmd",
    "status_cmd",
    "stop_cmd",
    "logs_cmd",
    "sim_cmd",
    "gen_ranktable_cmd",
    "doctor_cmd",
    "diagnose_cmd",
    "demo_cmd",
    "proxy_cmd",
    "check_links_cmd",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"ascend_pd.cli.{name}")
        cli.add_command(module.command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="ascend-pd")
