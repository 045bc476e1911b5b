"""The one jinja2 environment of ascend-pd: launch scripts, env files and the proxy script.

Templates live in the top-level ``templates/`` folder (packaged as ``ascend_pd/templates``).
Every interpolated value goes through ``shquote`` (``shlex.quote``), so a model path with
spaces, quotes or ``$(...)`` reaches the server byte for byte and is never executed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import jinja2

from ascend_pd.errors import RenderError
from ascend_pd.resources import data_dir

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shquote(value: object) -> str:
    """Quote one value for bash (numbers too: the template never trusts its input)."""
    return shlex.quote(str(value))


def shargs(values: Iterable[object]) -> str:
    """Quote and space-join a sequence of words."""
    return " ".join(shquote(v) for v in values)


def comment(value: object) -> str:
    """Make ``value`` safe inside a ``#`` comment (a newline would end the comment)."""
    return _CONTROL.sub("?", str(value))


def argv_lines(argv: Iterable[str]) -> list[list[str]]:
    """Group an argv for display: each option starts a line, its values follow it.

    Purely cosmetic: the lines are elements of one bash array, so grouping never changes
    the words the program receives.
    """
    lines: list[list[str]] = []
    for word in argv:
        if not lines or (word.startswith("-") and len(word) > 1):
            lines.append([word])
        else:
            lines[-1].append(word)
    return lines


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment (loaded once per process)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - shell scripts, not HTML; values use shquote
    )
    env.filters["shquote"] = shquote
    env.filters["shargs"] = shargs
    env.filters["comment"] = comment
    env.filters["argv_lines"] = argv_lines
    return env


def render_template(name: str, **context: Any) -> str:
    """Render template ``name``; any jinja problem becomes a RenderError naming it.

    Raises:
        RenderError: the template is missing, has a syntax error, or uses an undefined value.
    """
    try:
        return environment().get_template(name).render(**context)
    except jinja2.TemplateNotFound as err:
        raise RenderError(
            f"template '{name}' not found (looked for '{err.name}' in {data_dir('templates')})",
            hint="reinstall ascend-pd; the templates folder is incomplete",
        ) from err
    except jinja2.TemplateSyntaxError as err:
        raise RenderError(
            f"template '{err.name or name}' line {err.lineno}: {err.message}",
            hint="the template is broken; restore it from the ascend-pd release",
        ) from err
    except jinja2.TemplateError as err:
        raise RenderError(
            f"template '{name}' could not be rendered: {err.message or err}",
            hint="this is a bug in ascend-pd's templates or renderer; please report it",
        ) from err
