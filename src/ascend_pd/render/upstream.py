"""What upstream vLLM (platform cuda / cpu) registers and reads, by release.

The vllm-ascend releases have harvested facts (``ascend_pd.releases``); upstream vLLM's few
facts the plan needs are kept here, each traced to a line of a *released* vLLM sdist
(:data:`SOURCES`; ``tests/render/test_cuda_sources.py`` reads those lines in the real sdists,
and ``tests/golden/render/SOURCES.md`` cites every one of them):

* the storage connector's class: ``SharedStorageConnector`` up to 0.12.x, ``ExampleConnector``
  from 0.13.0;
* ``P2pNcclConnector``: registered at 0.13.0 and 0.23.0, gone at 0.30.0;
* the P2pNccl contract: worker ``i`` binds ``kv_port + i`` on ``VLLM_HOST_IP``; each instance
  registers ``http_port`` with the proxy at ``proxy_ip:proxy_port`` over ZMQ, and the proxy
  puts both sides' ZMQ addresses into the request id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from packaging.version import InvalidVersion, Version

#: the first release that registers ExampleConnector (0.12.0 still has SharedStorageConnector)
STORAGE_RENAMED_IN: Final[Version] = Version("0.13.0")
#: the releases seen to register P2pNcclConnector (first and last), and the first without it
P2P_NCCL_SEEN: Final[tuple[Version, Version]] = (Version("0.13.0"), Version("0.23.0"))
P2P_NCCL_GONE_IN: Final[Version] = Version("0.30.0")
#: upstream's example P2pNccl proxy serves clients on this port (its discovery port is 30001)
P2P_EXAMPLE_PROXY_PORT: Final[int] = 10001

P2pStatus = Literal["registered", "removed", "unknown"]


@dataclass(frozen=True)
class Source:
    """One upstream line a rendered value rests on: ``needle`` is on ``path:line`` of the
    vLLM ``version`` sdist."""

    what: str
    version: str
    path: str
    line: int
    needle: str

    @property
    def ref(self) -> str:
        return f"{self.path}:{self.line}"


_FACTORY = "vllm/distributed/kv_transfer/kv_connector/factory.py"
_P2P = "vllm/distributed/kv_transfer/kv_connector/v1/p2p/p2p_nccl_engine.py"
_P2P_EXAMPLE = "examples/disaggregated/p2p_nccl_xpyd/disagg_example_p2p_nccl_xpyd.sh"
_P2P_PROXY = "examples/disaggregated/p2p_nccl_xpyd/disagg_proxy_p2p_nccl_xpyd.py"
_ARGS = "vllm/engine/arg_utils.py"

SOURCES: Final[tuple[Source, ...]] = (
    Source("SharedStorageConnector registered", "0.12.0", _FACTORY, 147,
           '"SharedStorageConnector",'),
    Source("ExampleConnector registered", "0.13.0", _FACTORY, 147, '"ExampleConnector",'),
    Source("shared_storage_path read", "0.13.0",
           "vllm/distributed/kv_transfer/kv_connector/v1/example_connector.py", 104,
           '"shared_storage_path"'),
    Source("P2pNcclConnector registered", "0.13.0", _FACTORY, 153, '"P2pNcclConnector",'),
    Source("P2pNcclConnector registered", "0.23.0", _FACTORY, 165, '"P2pNcclConnector",'),
    Source("P2P worker port = kv_port + rank", "0.23.0", _P2P, 91,
           "port = int(self.config.kv_port) + port_offset"),
    Source("P2P proxy_ip read", "0.23.0", _P2P, 102, '"proxy_ip"'),
    Source("P2P proxy_port read", "0.23.0", _P2P, 103, '"proxy_port"'),
    Source("P2P http_port read", "0.23.0", _P2P, 110, '"http_port"'),
    Source("P2P send_type read", "0.23.0", _P2P, 150, '"send_type", "PUT_ASYNC"'),
    Source("P2P prefill kv-transfer-config", "0.23.0", _P2P_EXAMPLE, 182,
           '\\"kv_role\\":\\"kv_producer\\",\\"kv_buffer_size\\":\\"1e1\\"'),
    Source("P2P decode kv-transfer-config", "0.23.0", _P2P_EXAMPLE, 210,
           '\\"kv_role\\":\\"kv_consumer\\",\\"kv_buffer_size\\":\\"8e9\\"'),
    Source("P2P example proxy discovery port", "0.23.0", _P2P_PROXY, 188,
           'start_service_discovery("0.0.0.0", 30001)'),
    Source("P2P example proxy client port", "0.23.0", _P2P_PROXY, 189, "port=10001"),
    Source("kv_load_failure_policy", "0.30.0", "vllm/config/kv_transfer.py", 103,
           'kv_load_failure_policy: Literal["recompute", "fail"]'),
    Source("--data-parallel-hybrid-lb", "0.30.0", _ARGS, 1171, '"--data-parallel-hybrid-lb"'),
    Source("--data-parallel-start-rank", "0.30.0", _ARGS, 1139, '"--data-parallel-start-rank"'),
    Source("--data-parallel-size-local", "0.30.0", _ARGS, 1145, '"--data-parallel-size-local"'),
    Source("--data-parallel-address", "0.30.0", _ARGS, 1151, '"--data-parallel-address"'),
    Source("VLLM_NIXL_SIDE_CHANNEL_PORT", "0.30.0", "vllm/envs.py", 1655,
           '"VLLM_NIXL_SIDE_CHANNEL_PORT"'),
)


def parse(version: str | None) -> Version | None:
    """``connector.vllm_version`` as a version (None: unset or not a version; a check says so)."""
    if version is None:
        return None
    try:
        return Version(version)
    except InvalidVersion:
        return None


def storage_connector(version: str | None) -> str:
    """The storage connector's registered name in that vLLM (unset: the current name)."""
    parsed = parse(version)
    if parsed is not None and parsed < STORAGE_RENAMED_IN:
        return "SharedStorageConnector"
    return "ExampleConnector"


def p2p_nccl_status(version: str | None) -> P2pStatus:
    """Whether that vLLM registers P2pNcclConnector, as far as the traced releases say."""
    parsed = parse(version)
    if parsed is None:
        return "unknown"
    if parsed >= P2P_NCCL_GONE_IN:
        return "removed"
    first, last = P2P_NCCL_SEEN
    return "registered" if first <= parsed <= last else "unknown"
