"""Validated dataclasses for the sim cluster file, without pydantic.

Why not pydantic here: every simulated ``hccn_tool`` / ``npu-smi`` call is a new Python
process that loads the sim cluster file, and importing pydantic and building the models
cost ~95 of its ~120 ms. The file's schema is small and ours, so a strict checker driven
by the dataclass annotations does the job: unknown keys, wrong types, out-of-range numbers
and bad literals are all reported at once, each with its path (``hosts.0.devices.3.link``).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

R = TypeVar("R", bound="Record")
_NOTHING = dataclasses.MISSING


class Invalid(Exception):
    """The data does not fit the record; ``problems`` are ``path: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def bounded(default: Any = _NOTHING, *, factory: Any = _NOTHING, ge: float | None = None,
            le: float | None = None, min_length: int | None = None) -> Any:
    """A dataclass field with range (``ge``/``le``) or length limits checked on load."""
    limits = {k: v for k, v in (("ge", ge), ("le", le), ("min_length", min_length))
              if v is not None}
    if factory is not _NOTHING:
        return dataclasses.field(default_factory=factory, metadata=limits)
    return dataclasses.field(default=default, metadata=limits)


class Record:
    """Base of the sim cluster dataclasses: ``from_data`` validates, ``to_data`` dumps."""

    def check(self) -> str | None:
        """A rule across fields; the message of the broken one, else None."""
        return None

    @classmethod
    def from_data(cls: type[R], data: Any) -> R:
        """Build from plain data (parsed YAML); Invalid with every problem found."""
        problems: list[str] = []
        built = _record(cls, data, (), problems)
        if problems or built is None:
            raise Invalid(problems or ["invalid data"])
        return built

    def to_data(self, *, exclude_defaults: bool = False) -> dict[str, Any]:
        """Plain data (for YAML/JSON); with ``exclude_defaults`` fields equal to their
        default are left out, at every level."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type, unused-ignore]
            value = getattr(self, f.name)
            if exclude_defaults and _is_default(f, value):
                continue
            out[f.name] = _plain(value, exclude_defaults)
        return out


def _is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    if f.default is not _NOTHING:
        return bool(value == f.default)
    if f.default_factory is not _NOTHING:
        return bool(value == f.default_factory())
    return False


def _plain(value: Any, exclude_defaults: bool) -> Any:
    if isinstance(value, Record):
        return value.to_data(exclude_defaults=exclude_defaults)
    if isinstance(value, list):
        return [_plain(v, exclude_defaults) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, exclude_defaults) for k, v in value.items()}
    return value


_FIELDS: dict[type[Any], list[tuple[dataclasses.Field[Any], Any]]] = {}


def _fields(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], Any]]:
    """The fields of a record class with their resolved annotations (computed once)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = _FIELDS[cls] = [(f, hints[f.name]) for f in dataclasses.fields(cls)]
    return found


def _where(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _record(cls: type[R], data: Any, loc: tuple[str | int, ...], problems: list[str],
            ) -> R | None:
    if not isinstance(data, dict):
        problems.append(f"{_where(loc)}: expected a mapping, got {type(data).__name__}")
        return None
    fields = _fields(cls)
    known = {f.name for f, _ in fields}
    before = len(problems)
    for key in data:
        if key not in known:
            problems.append(f"{_where((*loc, key))}: unknown key (allowed: "
                            f"{', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for f, hint in fields:
        here = (*loc, f.name)
        if f.name not in data:
            if f.default is _NOTHING and f.default_factory is _NOTHING:
                problems.append(f"{_where(here)}: required")
            continue
        value = _convert(hint, data[f.name], here, problems)
        _limits(f, value, here, problems)
        values[f.name] = value
    if len(problems) > before:
        return None
    built = cls(**values)
    message = built.check()
    if message:
        problems.append(f"{_where(loc)}: {message}")
    return built


def _limits(f: dataclasses.Field[Any], value: Any, loc: tuple[str | int, ...],
            problems: list[str]) -> None:
    limits = f.metadata
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "ge" in limits and value < limits["ge"]:
            problems.append(f"{_where(loc)}: must be >= {limits['ge']}, got {value}")
        if "le" in limits and value > limits["le"]:
            problems.append(f"{_where(loc)}: must be <= {limits['le']}, got {value}")
    if "min_length" in limits and isinstance(value, (str, list)) \
            and len(value) < limits["min_length"]:
        problems.append(f"{_where(loc)}: must have at least {limits['min_length']} item(s)")


def _convert(hint: Any, value: Any, loc: tuple[str | int, ...], problems: list[str]) -> Any:
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            trial: list[str] = []
            converted = _convert(option, value, loc, trial)
            if not trial:
                return converted
        names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
        problems.append(f"{_where(loc)}: expected {names}, got {value!r}")
        return value
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            problems.append(f"{_where(loc)}: must be one of "
                            f"{', '.join(repr(a) for a in allowed)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{_where(loc)}: expected a list, got {type(value).__name__}")
            return value
        (item,) = get_args(hint)
        return [_convert(item, v, (*loc, i), problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{_where(loc)}: expected a mapping, got {type(value).__name__}")
            return value
        _key, item = get_args(hint)
        return {str(k): _convert(item, v, (*loc, str(k)), problems) for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Record):
        return _record(hint, value, loc, problems)
    return _scalar(hint, value, loc, problems)


def _scalar(hint: Any, value: Any, loc: tuple[str | int, ...], problems: list[str]) -> Any:
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if hint is Any:
        return value
    problems.append(f"{_where(loc)}: expected {getattr(hint, '__name__', hint)}, "
                    f"got {value!r}")
    return value
