"""Cluster-wide hccn_tool preflight: per-device checks and the Prefill↔Decode ping matrix."""
