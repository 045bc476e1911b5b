"""Tests of the execution seam: local, SSH and fan-out."""
