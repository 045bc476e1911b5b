"""``python -m ascend_pd.releases.harvest [--out FILE]``: re-harvest and write the data file."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ascend_pd.errors import AscendPDError
from ascend_pd.releases.harvest.build import DATA_PATH, harvest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harvest-releases", description=__doc__)
    parser.add_argument("--out", type=Path, default=DATA_PATH, help="data file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        data = harvest(args.out, progress=lambda v: print(f"harvest: {v}", file=sys.stderr))
    except AscendPDError as exc:
        print(f"Error: {exc.message}\nHint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    versions = [r.version for r in data.releases]
    print(f"wrote {args.out}: {len(versions)} releases, {versions[0]} … {versions[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
