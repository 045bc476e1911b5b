"""`python -m ascend_pd` runs the CLI."""

from __future__ import annotations

from ascend_pd.cli import main

main()
