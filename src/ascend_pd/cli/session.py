"""The per-invocation session shared by all commands, and the shared options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    # Types only: the spec models (pydantic) load when a command reads a spec, so
    # `ascend-pd proxy` without -c starts without them.
    from ascend_pd.runners.base import CommandRunner
    from ascend_pd.spec.models import ClusterSpec

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Session:
    json: bool = False
    verbose: int = 0
    backend: str | None = None
    spec_path: Path | None = None
    #: cleanups run when the command ends, whatever happened (close SSH connections)
    closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _spec: ClusterSpec | None = field(default=None, repr=False)

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()

    def spec(self) -> ClusterSpec:
        """The spec from -c (loaded once); UsageError when none was given."""
        if self._spec is None:
            from ascend_pd.errors import UsageError
            from ascend_pd.spec import load_spec

            if self.spec_path is None:
                raise UsageError("this command needs a spec", hint="pass -c pd.yaml")
            self._spec = load_spec(self.spec_path)
        return self._spec

    @property
    def spec_dir(self) -> Path | None:
        return self.spec_path.parent if self.spec_path else None

    def runners(self) -> Callable[[str], CommandRunner]:
        """``host name -> runner`` for the spec's hosts; connections close when the command ends."""
        from ascend_pd.runners.factory import runner_factory
        from ascend_pd.runners.fanout import RunnerPool

        pool = RunnerPool(runner_factory(self.spec(), self.resolved_backend(),
                                         spec_dir=self.spec_dir))
        self.closers.append(pool.close)
        return pool.get

    def resolved_backend(self) -> str:
        from ascend_pd.runners.factory import resolve_backend

        return resolve_backend(self.backend, self._spec if self.spec_path else None)[0]


pass_session = click.make_pass_decorator(Session, ensure=True)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(Session).json = True
    return value


def _set_spec(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.ensure_object(Session).spec_path = Path(value)
    return value


def _set_backend(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.ensure_object(Session).backend = value
    return value


json_option = click.option(
    "--json", "json_", is_flag=True, expose_value=False, callback=_set_json, is_eager=True,
    help="Print a JSON envelope on stdout instead of tables (no progress output).",
)
spec_option = click.option(
    "-c", "--config", "config", type=click.Path(dir_okay=False), expose_value=False,
    callback=_set_spec, is_eager=True, envvar="ASCEND_PD_CONFIG",
    help="Cluster spec (pd.yaml). Env: ASCEND_PD_CONFIG.",
)
backend_option = click.option(
    "--backend", type=click.Choice(["auto", "local", "ssh", "sim"]), expose_value=False,
    callback=_set_backend,
    help="How commands reach hosts (default: spec, then auto = local/ssh by address).",
)


def common(func: F) -> F:
    """--json on every command."""
    return functools.wraps(func)(json_option(func))  # type: ignore[return-value]
