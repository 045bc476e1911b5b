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
from ascend_pd.errors import AscendPDError, FileAccessError, UsageError

log = logging.getLogger("ascend_pd")

_RAW_ARGS = "ascend_pd.raw_args"


class App(click.Group):
    """Root group: the one error boundary. Every error a user can cause (AscendPDError, a
    click usage error, an OSError such as a full or read-only output filesystem) becomes one
    message (or the JSON envelope) and its documented exit code; no tracebacks."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_MODULE_OF})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # Imported when run (or listed by --help), not all at start: `ascend-pd proxy`, which
        # launch starts on every deployment, then skips the simulators, doctor, k8s, …
        # (importing every command took 1.7 s of CPU per start at load 10).
        if cmd_name not in self.commands and cmd_name in _MODULE_OF:
            module = importlib.import_module(f"ascend_pd.cli.{_MODULE_OF[cmd_name]}")
            self.add_command(module.command)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # A usage error in a subcommand's options comes before its --json callback ever
        # runs, so the boundary also looks for the flag in the raw words.
        ctx.meta[_RAW_ARGS] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        raw: list[str] = ctx.meta.get(_RAW_ARGS, [])
        try:
            return super().invoke(ctx)
        except AscendPDError as err:
            self._fail(ctx, err, raw)
        except click.ClickException as exc:
            if not _json_mode(ctx, raw):
                raise  # click prints its usage text and exits 2
            self._fail(ctx, UsageError(exc.format_message(),
                                       hint="see `ascend-pd COMMAND --help`"), raw)
        except OSError as exc:
            self._fail(ctx, FileAccessError.from_os_error(exc), raw)
        finally:
            found = ctx.find_object(Session)
            if found is not None:
                found.close()

    @staticmethod
    def _fail(ctx: click.Context, err: AscendPDError, raw: list[str]) -> None:
        log.debug("error detail", exc_info=err)
        name = ctx.invoked_subcommand or "ascend-pd"
        if _json_mode(ctx, raw):
            print_json(envelope(name, None, err.exit_code, [err.to_dict()]))
        else:
            print_error(err)
        ctx.exit(err.exit_code)


def _json_mode(ctx: click.Context, raw: list[str]) -> bool:
    session = ctx.find_object(Session)
    return bool(session and session.json) or "--json" in raw[: raw.index("--")
                                                              if "--" in raw else None]


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


#: command name -> its module: ``gen_ranktable_cmd`` is ``gen-ranktable``
_MODULE_OF = {m.removesuffix("_cmd").replace("_", "-"): m for m in COMMAND_MODULES}


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="ascend-pd")
