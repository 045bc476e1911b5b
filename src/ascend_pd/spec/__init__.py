"""The cluster spec: hosts, model, connector, prefill/decode instances and proxy."""

from __future__ import annotations

from ascend_pd.spec.loader import load_spec, parse_spec
from ascend_pd.spec.models import (
    ClusterSpec,
    ConnectorSpec,
    HostSpec,
    InstanceSpec,
    ModelSpec,
    ProxySpec,
    SimSpec,
    SSHSpec,
)

__all__ = [
    "ClusterSpec",
    "ConnectorSpec",
    "HostSpec",
    "InstanceSpec",
    "ModelSpec",
    "ProxySpec",
    "SSHSpec",
    "SimSpec",
    "load_spec",
    "parse_spec",
]
