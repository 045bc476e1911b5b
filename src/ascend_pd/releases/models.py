"""The typed release facts (frozen dataclasses) and their JSON form.

Every fact carries where it was found in the release ("path:line" inside the sdist), so a reader
can check it against upstream. ``to_dict``/``from_dict`` are the one JSON mapping, used by the
harvester (writing) and the loader (reading).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from ascend_pd.errors import SpecError


def parse_version(text: str) -> Version:
    """A vllm-ascend version as PEP 440 (``"v0.11.0"`` accepted; ``0.23.0.post1`` > ``0.23.0``).

    Raises:
        SpecError: not a PEP 440 version.
    """
    cleaned = text.strip()
    try:
        return Version(cleaned)
    except InvalidVersion:
        raise SpecError(
            f"'{text}' is not a vllm-ascend version",
            hint='write it as the package registry does, e.g. "0.23.0.post1" or "0.30.0rc2" '
            "(`pip show vllm-ascend` on the host prints it)",
        ) from None


@dataclass(frozen=True)
class ConnectorFacts:
    """One P/D KV connector a release registers with vLLM's KVConnectorFactory."""

    name: str
    #: "mooncake" | "llmdatadist" | "other"
    family: str
    #: "prefill-first" | "decode-first" (decode-first: the proxy sends D the request first and
    #: D calls back the proxy's /v1/metaserver; the layerwise connectors)
    flow: str
    #: where the registration is, "path:line"
    source: str
    #: the module and class the name maps to
    module: str = ""
    class_name: str = ""


@dataclass(frozen=True)
class CompatRow:
    """The release's row of upstream's compatibility matrix (or its pins, where it has none)."""

    vllm: str | None = None
    python: str | None = None
    cann: str | None = None
    torch: str | None = None
    torch_npu: str | None = None
    mooncake_package: str | None = None
    mooncake_version: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ReleaseFacts:
    """What one vllm-ascend release reads and needs."""

    version: str
    connectors: dict[str, ConnectorFacts]
    env_vars: frozenset[str]
    mooncake_abort_timeout_env: str | None
    llmdd_abort_timeout_env: str | None
    llmdd_rpc_port_env: str | None
    additional_config_keys: frozenset[str]
    additional_config_strict: bool
    torchair: bool
    graph_mode: str
    reads_ranktable: bool
    use_ascend_direct: bool
    compat: CompatRow
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def parsed(self) -> Version:
        return Version(self.version)

    def connector(self, name: str) -> ConnectorFacts | None:
        """The registered P/D connector called ``name``, or None."""
        return self.connectors.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "connectors": {name: asdict(c) for name, c in sorted(self.connectors.items())},
            "env_vars": sorted(self.env_vars),
            "mooncake_abort_timeout_env": self.mooncake_abort_timeout_env,
            "llmdd_abort_timeout_env": self.llmdd_abort_timeout_env,
            "llmdd_rpc_port_env": self.llmdd_rpc_port_env,
            "additional_config_keys": sorted(self.additional_config_keys),
            "additional_config_strict": self.additional_config_strict,
            "torchair": self.torchair,
            "graph_mode": self.graph_mode,
            "reads_ranktable": self.reads_ranktable,
            "use_ascend_direct": self.use_ascend_direct,
            "compat": asdict(self.compat),
            "sources": dict(sorted(self.sources.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseFacts:
        return cls(
            version=str(data["version"]),
            connectors={
                name: ConnectorFacts(**entry) for name, entry in data["connectors"].items()
            },
            env_vars=frozenset(data["env_vars"]),
            mooncake_abort_timeout_env=data["mooncake_abort_timeout_env"],
            llmdd_abort_timeout_env=data["llmdd_abort_timeout_env"],
            llmdd_rpc_port_env=data["llmdd_rpc_port_env"],
            additional_config_keys=frozenset(data["additional_config_keys"]),
            additional_config_strict=bool(data["additional_config_strict"]),
            torchair=bool(data["torchair"]),
            graph_mode=str(data["graph_mode"]),
            reads_ranktable=bool(data["reads_ranktable"]),
            use_ascend_direct=bool(data["use_ascend_direct"]),
            compat=CompatRow(**data["compat"]),
            sources=dict(data.get("sources", {})),
        )


@dataclass(frozen=True)
class Resolution:
    """Which release's facts answer a version written in a spec or found on a host."""

    requested: str
    facts: ReleaseFacts
    exact: bool
    basis: str
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "exact": self.exact,
            "basis": self.basis,
            "note": self.note,
        }
