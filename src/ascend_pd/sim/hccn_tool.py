"""``ascend-pd-sim-hccn-tool``: the stand-in hccn_tool executable (see ascend_pd.sim.entry)."""

from __future__ import annotations

import sys

from ascend_pd.sim.entry import run_tool


def main() -> None:
    """Console-script entry point; exits with hccn_tool's status."""
    sys.exit(run_tool("hccn_tool"))


if __name__ == "__main__":
    main()
