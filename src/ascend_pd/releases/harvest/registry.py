"""The package registry side of the harvester: list vllm-ascend releases, fetch their sdists.

Downloads go to a cache outside the tree (``$XDG_CACHE_HOME/ascend-pd/sdists`` or
``~/.cache/ascend-pd/sdists``) and are checked against the sha256 the registry publishes; nothing
is vendored. A cached file whose digest matches is never downloaded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from packaging.version import InvalidVersion, Version

from ascend_pd.errors import AscendPDError

log = logging.getLogger(__name__)

PROJECT: Final = "vllm-ascend"
JSON_URL: Final = f"https://pypi.org/pypi/{PROJECT}/json"
#: The oldest release the data covers (its release candidates included): the first release line
#: with P/D disaggregation (LLMDataDist from 0.9.1rc2).
OLDEST: Final = Version("0.9.1rc1")
#: Large sdists (~20 MB) on a shared link: generous, but never unbounded.
TIMEOUT_S: Final = 300.0


class HarvestError(AscendPDError):
    """The registry could not be read, or a download did not match its published digest."""

    exit_code = 3


@dataclass(frozen=True)
class Sdist:
    """One release's source distribution as the registry lists it."""

    version: str
    filename: str
    url: str
    sha256: str
    size: int


def cache_dir() -> Path:
    """Where sdists are cached (created on demand)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ascend-pd" / "sdists"


def parse_index(document: dict[str, object], base_url: str = JSON_URL) -> list[Sdist]:
    """The sdists of every release >= OLDEST in a registry JSON document, oldest first.

    File URLs may be relative to the document (registry mirrors rewrite them so).
    """
    releases = document.get("releases")
    if not isinstance(releases, dict):
        raise HarvestError("registry answer has no 'releases' table", hint=f"check {JSON_URL}")
    found: list[Sdist] = []
    for version, files in releases.items():
        try:
            parsed = Version(version)
        except InvalidVersion:
            continue
        if parsed < OLDEST or not isinstance(files, list):
            continue
        for entry in files:
            if entry.get("packagetype") == "sdist" and not entry.get("yanked", False):
                found.append(
                    Sdist(
                        version=version,
                        filename=str(entry["filename"]),
                        url=urllib.parse.urljoin(base_url, str(entry["url"])),
                        sha256=str(entry["digests"]["sha256"]),
                        size=int(entry.get("size", 0)),
                    )
                )
                break
    return sorted(found, key=lambda s: Version(s.version))


def list_sdists(url: str = JSON_URL) -> list[Sdist]:
    """Ask the registry for every vllm-ascend sdist (one HTTP request)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 (fixed https URL)
            document = json.load(answer)
            base = answer.geturl()
    except (OSError, ValueError) as exc:
        raise HarvestError(
            f"cannot read the release list from {url}: {exc}",
            hint="check network access to the package registry, then re-run",
        ) from exc
    return parse_index(document, base)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(sdist: Sdist, cache: Path | None = None) -> Path:
    """The cached sdist file, downloaded and digest-checked when missing."""
    folder = cache or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / sdist.filename
    if dest.exists() and _sha256(dest) == sdist.sha256:
        return dest
    tmp = dest.with_name(dest.name + ".part")
    log.info("downloading %s (%d bytes)", sdist.filename, sdist.size)
    try:
        with urllib.request.urlopen(sdist.url, timeout=TIMEOUT_S) as answer, tmp.open("wb") as out:  # noqa: S310
            for block in iter(lambda: answer.read(1 << 20), b""):
                out.write(block)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise HarvestError(
            f"download of {sdist.filename} failed: {exc}", hint="re-run; finished files are kept"
        ) from exc
    actual = _sha256(tmp)
    if actual != sdist.sha256:
        tmp.unlink(missing_ok=True)
        raise HarvestError(
            f"{sdist.filename}: sha256 {actual} differs from the registry's {sdist.sha256}",
            hint="the download was corrupted or tampered with; re-run to fetch it again",
        )
    tmp.replace(dest)
    return dest


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack an sdist below ``dest`` (once) and return its top folder."""
    top = dest / archive.name.removesuffix(".tar.gz")
    marker = top / ".unpacked"
    if marker.exists():
        return top
    with tarfile.open(archive) as tar:
        # The "data" filter refuses absolute paths, links out of the tree and device files.
        tar.extractall(dest, filter="data")
    marker.touch()
    return top
