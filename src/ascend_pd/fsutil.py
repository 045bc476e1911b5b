"""Atomic file writes: a reader never sees a half-written ranktable, script or spec."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ascend_pd.errors import FileAccessError, UsageError


def atomic_write_text(
    path: str | Path, text: str, *, overwrite: bool = True, mode: int | None = None
) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same directory and a rename.

    Args:
        path: destination; parent directories are created.
        text: the full content.
        overwrite: when False, an existing file is an error (and is left untouched).
        mode: file permissions, e.g. 0o755 for scripts.

    Raises:
        FileAccessError: the directory or file cannot be written (full or read-only
            filesystem, permissions); the destination is left as it was.
    """
    try:
        return _write(path, text, overwrite=overwrite, mode=mode)
    except OSError as exc:
        raise FileAccessError(
            f"cannot write {Path(path).expanduser()}: {exc.strerror or exc}",
            hint="Check the directory's permissions and free space (`df -h`), "
            "or write the output elsewhere.",
        ) from exc


def _write(path: str | Path, text: str, *, overwrite: bool, mode: int | None) -> Path:
    dest = Path(path).expanduser()
    if not overwrite and dest.exists():
        raise UsageError(f"{dest} already exists", hint="pass --force to overwrite it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return dest
