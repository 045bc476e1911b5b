"""Locate data shipped with the package: templates/ and ranktable/.

In a wheel they sit in ascend_pd/_data/ (pyproject force-include); in a source checkout or
an editable install they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

from ascend_pd.errors import AscendPDError

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory of shipped data ``name`` ("templates" or "ranktable")."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise AscendPDError(
        f"packaged data folder '{name}' not found next to {_PACKAGE_DIR}",
        hint="Reinstall ascend-pd (`pip install --force-reinstall ascend-pd`).",
    )
