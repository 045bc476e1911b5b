"""Tests of `ascend-pd render` and the P/D validation checks."""
