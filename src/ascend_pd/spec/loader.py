"""Load pd.yaml: YAML with line numbers -> pydantic models -> cross-field checks.

Every problem becomes one line ``<key path> (line N): <what> — <fix>``; they are raised
together as one SpecError so a user fixes the file in one pass.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ascend_pd.errors import SpecError
from ascend_pd.spec.models import ClusterSpec

Loc = tuple[str | int, ...]


def format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _line_map(text: str) -> dict[Loc, int]:
    """Map every key path in the YAML document to its 1-based line."""
    lines: dict[Loc, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, loc: Loc) -> None:
        lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (key_node.value,)
                lines[loc + key] = key_node.start_mark.line + 1
                walk(value_node, loc + key)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))

    if root is not None:
        walk(root, ())
    return lines


def _line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that owns the keys at ``loc``."""
    current: Any = ClusterSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (list, typing.List, Union, types.UnionType):  # noqa: UP006
        for arg in get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    return annotation


def _describe(err: Any) -> tuple[str, str | None]:
    kind = err["type"]
    loc: Loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else (
            f"known keys here: {', '.join(known)}" if known else None
        )
        return f"unknown key '{loc[-1]}'", hint
    if kind == "missing":
        return "required key is missing", "add it (see `ascend-pd init` for an example)"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{err['input']!r} is not allowed", f"use one of {expected}"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return f"{err['msg']} (got {shown})", None


def parse_spec(text: str, source: str = "<spec>") -> ClusterSpec:
    """Parse and validate spec text; raise one SpecError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(
            f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}",
            hint="Check indentation and quoting around that line.",
        ) from exc
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: the spec must be a YAML mapping, got {type(data).__name__}",
            hint="Start from `ascend-pd init > pd.yaml`.",
        )
    lines = _line_map(text)
    try:
        spec = ClusterSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc: Loc = tuple(err["loc"])
            message, hint = _describe(err)
            problems.append(_format(loc, lines, message, hint))
        raise _spec_error(source, problems) from exc

    from ascend_pd.spec.checks import check_spec  # after models: checks import them

    found = check_spec(spec)
    if found:
        raise _spec_error(
            source, [_format(p.loc, lines, p.message, p.hint) for p in found]
        )
    return spec


def _format(loc: Loc, lines: dict[Loc, int], message: str, hint: str | None) -> str:
    line = _line_of(lines, loc)
    where = format_path(loc) + (f" (line {line})" if line else "")
    return f"{where}: {message}" + (f" — {hint}" if hint else "")


def _spec_error(source: str, problems: list[str]) -> SpecError:
    head = problems[0] if len(problems) == 1 else f"{len(problems)} problems"
    return SpecError(
        f"{source}: {head}",
        hint="Fix the key(s) named above; `ascend-pd validate -c FILE` re-checks.",
        problems=problems,
    )


def load_spec(path: str | Path) -> ClusterSpec:
    """Read and validate a spec file.

    Raises:
        SpecError: unreadable file or any invalid key; every problem names key and line.
    """
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            f"cannot read spec {p}: {exc.strerror}",
            hint="Pass the spec with -c FILE, or create one with `ascend-pd init -o pd.yaml`.",
        ) from exc
    return parse_spec(text, source=str(path))
