"""Load pd.yaml: YAML with line numbers -> pydantic models -> cross-field checks.

Every problem becomes one finding (``ascend_pd.findings``: key path, YAML line, what, fix),
printed as ``<key path> (line N): <what> — <fix>``; they are raised together as one
SpecError so a user fixes the file in one pass.

Loading is bounded: only regular files up to :data:`MAX_SPEC_BYTES` are read (``-c
/dev/zero`` or a FIFO must not grow or block), the YAML node graph is composed once and
its size *with aliases expanded* is counted before anything walks it (a 2 KB alias bomb
expands to billions of nodes), and a mapping that repeats a key is an error (YAML
libraries keep the last one silently).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import types
import typing
from pathlib import Path
from typing import Any, Final, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ascend_pd.errors import SpecError
from ascend_pd.findings import Finding, evolve
from ascend_pd.printer import finding_line
from ascend_pd.spec.models import ClusterSpec

Loc = tuple[str | int, ...]

#: A real spec is a few KB; 1 MiB leaves room for hundreds of hosts.
MAX_SPEC_BYTES: Final[int] = 1 << 20
#: Nodes after alias expansion. A 1,000-host spec has ~50k; a bomb has billions.
MAX_SPEC_NODES: Final[int] = 500_000


def format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _compose(text: str, source: str) -> yaml.Node | None:
    """The document's node graph, checked for size (aliases expanded) and repeated keys.

    Raises:
        SpecError: not valid YAML, too many nodes, or a repeated key.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(
            f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}",
            hint="Check indentation and quoting around that line.",
        ) from exc
    if root is None:
        return None
    # Expanded size per node, memoised by identity: linear in the graph, however many times
    # aliases repeat a subtree. A node met again while still being counted is a cycle.
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    counting: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        kids = _children(node)
        if children_done:
            counting.discard(key)
            sizes[key] = 1 + sum(sizes[id(k)] for k in kids)
            if sizes[key] > MAX_SPEC_NODES:
                raise SpecError(
                    f"{source}: the YAML expands to more than {MAX_SPEC_NODES:,} values "
                    f"(line {node.start_mark.line + 1}: anchors/aliases repeated in a chain)",
                    hint="A spec needs no nested aliases; write the values out, or use one "
                    "level of anchors.",
                )
            continue
        if key in counting:
            raise SpecError(
                f"{source}: line {node.start_mark.line + 1}: an alias refers to a value "
                "that contains it", hint="Remove the recursive alias.")
        counting.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)
    _check_repeated_keys(root, source)
    return root


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_repeated_keys(root: yaml.Node, source: str) -> None:
    """Every mapping's explicit keys are distinct (``<<`` merges may be overridden)."""
    problems: list[Finding] = []
    seen_nodes: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, _value in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    problems.append(Finding(
                        severity="error", check="spec", line=line,
                        message=f"key '{key_node.value}' repeats the one on line "
                                f"{first[key_node.value]}",
                        fix="merge them into one (YAML would keep only the last)"))
                else:
                    first[key_node.value] = line
        todo.extend(_children(node))
    if problems:
        raise _spec_error(source, problems)


def _line_map(root: yaml.Node | None) -> dict[Loc, int]:
    """Map every key path in the YAML document to its 1-based line (first occurrence)."""
    lines: dict[Loc, int] = {}

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
    if kind == "value_error":  # our validators name the value themselves
        return str(err["msg"]).removeprefix("Value error, "), None
    value = err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return f"{err['msg']} (got {shown})", None


def parse_spec(text: str, source: str = "<spec>") -> ClusterSpec:
    """Parse and validate spec text; raise one SpecError listing every problem."""
    root = _compose(text, source)
    data = _construct(root, source)
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: the spec must be a YAML mapping, got {type(data).__name__}",
            hint="Start from `ascend-pd init > pd.yaml`.",
        )
    lines = _line_map(root)
    try:
        spec = ClusterSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc: Loc = tuple(err["loc"])
            message, hint = _describe(err)
            problems.append(Finding(severity="error", check="spec", key=format_path(loc),
                                    line=_line_of(lines, loc), message=message,
                                    fix=hint or ""))
        raise _spec_error(source, problems) from exc

    from ascend_pd.spec.checks import check_spec  # after models: checks import them

    spec._lines = lines
    found = [with_line(spec, f) for f in check_spec(spec)]
    if found:
        raise _spec_error(source, found)
    return spec


_PATH_PART: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(key: str) -> Loc:
    """``prefill[0].env.X`` -> ``("prefill", 0, "env", "X")`` (the inverse of format_path)."""
    return tuple(name if name else int(index) for name, index in _PATH_PART.findall(key))


def key_line(spec: ClusterSpec, key: str) -> int | None:
    """The YAML line of ``key`` (or of its nearest parent that is in the file)."""
    return _line_of(spec._lines, parse_path(key)) if spec._lines else None


def with_line(spec: ClusterSpec, finding: Finding) -> Finding:
    """``finding`` with the YAML line of its key filled in, when the spec came from a file."""
    if finding.key is None or finding.line is not None:
        return finding
    line = key_line(spec, finding.key)
    return finding if line is None else evolve(finding, line=line)


def _construct(root: yaml.Node | None, source: str) -> Any:
    """Python values from the checked node graph (aliases stay shared, not copied)."""
    if root is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                        hint="Check the value on that line.") from exc
    finally:
        loader.dispose()


def _spec_error(source: str, problems: list[Finding]) -> SpecError:
    head = finding_line(problems[0], severity=False) if len(problems) == 1 else (
        f"{len(problems)} problems")
    return SpecError(
        f"{source}: {head}",
        hint="Fix the key(s) named above; `ascend-pd validate -c FILE` re-checks.",
        findings=problems,
    )


def load_spec(path: str | Path) -> ClusterSpec:
    """Read and validate a spec file.

    Raises:
        SpecError: not a regular file, too large, not UTF-8, or any invalid key; every
            problem names key and line.
    """
    return parse_spec(read_spec_text(path), source=str(path))


def read_spec_text(path: str | Path) -> str:
    """The text of a spec file: a regular file of at most MAX_SPEC_BYTES, UTF-8.

    Opened non-blocking and checked with fstat before reading, so a FIFO or a device
    (``-c /dev/zero``) is refused at once instead of blocking or filling memory.
    """
    p = Path(path).expanduser()
    hint = "Pass the spec with -c FILE, or create one with `ascend-pd init -o pd.yaml`."
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise SpecError(f"cannot read spec {p}: {exc.strerror}", hint=hint) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"spec {p} is not a regular file", hint=hint)
        if info.st_size > MAX_SPEC_BYTES:
            raise SpecError(f"spec {p} is {info.st_size:,} bytes, over the "
                            f"{MAX_SPEC_BYTES:,}-byte limit", hint=hint)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_SPEC_BYTES:  # the file may grow after fstat
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"spec {p} is over the {MAX_SPEC_BYTES:,}-byte limit", hint=hint)
    except OSError as exc:
        raise SpecError(f"cannot read spec {p}: {exc.strerror}", hint=hint) from exc
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                        hint="Save the spec as UTF-8.") from exc
