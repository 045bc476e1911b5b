"""The vllm-ascend compatibility table (data in compat.yaml) and version comparison."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from ascend_pd.errors import AscendPDError

COMPAT_PATH: Final[Path] = Path(__file__).resolve().parent / "compat.yaml"

_TOKEN = re.compile(r"\d+|[A-Za-z]+")
_PRE = {"rc": 0.0, "a": -1.0, "alpha": -1.0, "b": -0.5, "beta": -0.5, "dev": -2.0}


def version_key(version: str) -> tuple[tuple[float, int], ...]:
    """A sort key for PEP 440-ish and CANN versions: ``8.3.RC1 < 8.3.0``, ``0.10.0rc1 <
    0.10.0 < 0.10.0.post1``, ``2.7.1.dev2025 < 2.7.1``; a ``+local`` part is ignored."""
    tokens = _TOKEN.findall(version.split("+", 1)[0])
    key: list[tuple[float, int]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.isdigit():
            key.append((1.0, int(tok)))
        else:
            number = 0
            if i + 1 < len(tokens) and tokens[i + 1].isdigit():
                i += 1
                number = int(tokens[i])
            key.append((2.0 if tok.lower() == "post" else _PRE.get(tok.lower(), -1.0), number))
        i += 1
    key.append((0.5, 0))  # end marker: a release sorts after its pre-releases
    return tuple(key)


def base_version(version: str) -> str | None:
    """``X.Y.Z`` of a version (``2.7.1.post1+cpu`` -> ``2.7.1``), None if it has none."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not match:
        return None
    return f"{match.group(1)}.{match.group(2)}.{match.group(3) or 0}"


@dataclass(frozen=True)
class Release:
    """One vllm-ascend release row."""

    vllm_ascend: str
    vllm: str
    torch: str
    cann_min: str
    connectors: tuple[str, ...]
    verified: bool


@dataclass(frozen=True)
class CompatTable:
    releases: dict[str, Release]
    mooncake_cann_min: str

    def release(self, vllm_ascend: str) -> Release | None:
        """The row for an installed vllm-ascend version (``+local`` ignored)."""
        return self.releases.get(vllm_ascend.split("+", 1)[0])


def load_compat(path: str | Path | None = None) -> CompatTable:
    """Load the packaged compatibility table (cached)."""
    return _load(str(Path(path) if path else COMPAT_PATH))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> CompatTable:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        releases = {
            str(name): Release(
                vllm_ascend=str(name), vllm=str(row["vllm"]), torch=str(row["torch"]),
                cann_min=str(row["cann_min"]), connectors=tuple(row["connectors"]),
                verified=bool(row.get("verified", False)),
            )
            for name, row in data["versions"].items()
        }
        return CompatTable(releases, str(data["mooncake_cann_min"]))
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise AscendPDError(f"cannot load the compatibility table {path}: {exc}",
                            hint="Reinstall ascend-pd, or fix compat.yaml.") from exc
