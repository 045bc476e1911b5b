"""``ascend-pd-sim-npu-smi``: the stand-in npu-smi executable (see ascend_pd.sim.entry)."""

from __future__ import annotations

import sys

from ascend_pd.sim.entry import run_tool


def main() -> None:
    """Console-script entry point; exits with npu-smi's status."""
    sys.exit(run_tool("npu-smi"))


if __name__ == "__main__":
    main()
