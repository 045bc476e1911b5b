"""``ascend-pd-sim-nvidia-smi``: the stand-in nvidia-smi executable (see ascend_pd.sim.entry)."""

from __future__ import annotations

import sys

from ascend_pd.sim.entry import run_tool


def main() -> None:
    """Console-script entry point; exits with nvidia-smi's status."""
    sys.exit(run_tool("nvidia-smi"))


if __name__ == "__main__":
    main()
