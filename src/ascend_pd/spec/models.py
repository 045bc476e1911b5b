"""Typed models of the cluster spec (pd.yaml). Structure only; cross-field rules live in
``ascend_pd.spec.checks`` so that every problem can name its key path and YAML line."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from ascend_pd.k8s.model import K8sSpec

DEFAULT_HCCN_TOOL: Final[str] = "/usr/local/Ascend/driver/tools/hccn_tool"
DEFAULT_NPU_SMI: Final[str] = "npu-smi"

Hardware = Literal["a2", "a3"]
Backend = Literal["auto", "local", "ssh", "sim"]
HostKeyPolicy = Literal["strict", "accept-new"]
#: what the servers run on: Huawei NPUs (vllm-ascend), NVIDIA GPUs or the CPU (upstream vLLM)
Platform = Literal["ascend", "cuda", "cpu"]


#: one DNS label (RFC 1123): letters, digits, '-', not at either end
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _ip(value: str) -> str:
    """An IPv4 or IPv6 address (``999.0.2.11`` is not one)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
    return value


def _ip_or_name(value: str) -> str:
    """An IP address or a DNS name. All-numeric dotted text must be a valid IPv4 address:
    ``999.0.2.11`` is a typo of an IP, not a host name."""
    if ":" in value or re.fullmatch(r"[0-9.]+", value):
        return _ip(value)
    if len(value) > 253 or not all(_LABEL.match(p) for p in value.rstrip(".").split(".")):
        raise ValueError(f"{value!r} is neither an IP address nor a DNS name")
    return value


def _abs_path(value: str) -> str:
    # An empty or relative state_dir would put pid files and logs under / or the remote
    # user's working directory (``state_dir: ''`` wrote into /deploy and /run).
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    return value


IPAddress = Annotated[str, AfterValidator(_ip)]
HostAddress = Annotated[str, AfterValidator(_ip_or_name)]
AbsPath = Annotated[str, AfterValidator(_abs_path)]


class _Model(BaseModel):
    # Unknown keys are errors (with a did-you-mean), never silently dropped. strict: YAML's
    # `true` is not a port or a count, and "8100" is not an int (lax mode took both).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SSHSpec(_Model):
    """How to reach hosts over SSH. Host entries may override any field."""

    user: str = "root"
    port: int = Field(22, ge=1, le=65535)
    key: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    # "strict": unknown or changed host keys are errors. "accept-new": a host seen for the
    # first time is recorded in known_hosts; a changed key is still an error.
    host_key_policy: HostKeyPolicy = "strict"
    connect_timeout_s: float = Field(10.0, gt=0)
    use_agent: bool = True


class HostSSHSpec(_Model):
    #: where to connect, when not ``hosts[].address`` (an IP or DNS name)
    address: HostAddress | None = None
    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    key: str | None = None


class DockerSpec(_Model):
    """Container runtime for the vLLM server (runtime: docker)."""

    image: str
    shm_size: str = "500g"
    name_prefix: str = "ascend-pd"
    extra_args: list[str] = Field(default_factory=list)


class HostSpec(_Model):
    """One NPU server."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    #: the host IP: ranktable server_id, HCCL_IF_IP, VLLM_HOST_IP
    address: IPAddress
    ssh: HostSSHSpec = HostSSHSpec()
    #: the NIC that carries ``address`` (GLOO/TP/HCCL_SOCKET_IFNAME)
    nic: str = "eth0"
    #: physical NPU ids present on the host (A2: 0..7, A3: 0..15)
    devices: list[int] = Field(default_factory=lambda: list(range(8)), min_length=1)
    hccn_tool: str | None = None
    npu_smi: str | None = None
    runtime: Literal["host", "docker"] = "host"
    docker: DockerSpec | None = None
    #: extra environment for every command ascend-pd runs on this host
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("devices")
    @classmethod
    def _device_range(cls, value: list[int]) -> list[int]:
        for dev in value:
            if not 0 <= dev <= 15:
                raise ValueError(f"device id {dev} is outside 0..15")
        if len(set(value)) != len(value):
            raise ValueError("device ids repeat")
        return value


class ModelSpec(_Model):
    path: str = Field(min_length=1)
    served_name: str = Field(min_length=1)
    #: "ascend" for W8A8 weights produced by msmodelslim; none for bf16 weights
    quantization: Literal["ascend", "none"] = "none"
    max_model_len: int = Field(32768, gt=0)
    trust_remote_code: bool = True
    dtype: str | None = None
    kv_cache_dtype: str = "auto"
    block_size: int | None = Field(None, gt=0)
    #: attention family; LLMDataDist needs equal P/D TP for gqa/mha
    attention: Literal["mla", "gqa", "mha"] = "mla"
    seed: int | None = 1024


def _newest_stable() -> str:
    # Imported here: the release data is only read when a spec leaves the version out.
    from ascend_pd.releases import newest_stable

    return newest_stable()


#: P/D connectors the renderer knows how to configure (the release facts say which exist
#: in which release; validate refuses one the spec's release does not register)
MooncakeConnector = Literal["MooncakeConnectorV1", "MooncakeLayerwiseConnector",
                            "MooncakeHybridConnector", "MooncakeConnectorV2"]


#: the connectors of upstream vLLM (platform cuda or cpu); docs/cuda.md
UPSTREAM_CONNECTORS: Final[tuple[str, ...]] = ("nixl", "p2pnccl", "storage")


class ConnectorSpec(_Model):
    #: mooncake on every current release; llmdatadist only where the release reads a rank
    #: table (<= 0.11.x); nixl (NixlConnector), p2pnccl (P2pNcclConnector, cuda) and
    #: storage (ExampleConnector / SharedStorageConnector): upstream vLLM (cuda or cpu)
    type: Literal["llmdatadist", "mooncake", "nixl", "p2pnccl", "storage"] = "mooncake"
    #: the vllm-ascend release installed on the hosts (default: the newest stable release
    #: the packaged release data knows)
    vllm_ascend_version: str = Field(default_factory=_newest_stable)
    #: where the ranktable lives on every host (LLMDataDist)
    ranktable_path: str = "/etc/ascend-pd/ranktable.json"
    #: base of the LLMDataDist metadata RPC ports; instances sharing a host get disjoint ranges
    rpc_port_base: int = Field(5557, ge=1024, le=65000)
    #: base of the Mooncake kv_port (above AscendDirectTransport's random range), or of
    #: the NIXL side-channel port (VLLM_NIXL_SIDE_CHANNEL_PORT)
    kv_port_base: int = Field(36000, ge=1024, le=65000)
    #: Mooncake connector class (Layerwise: decode-first proxy; Hybrid: hybrid-KV models;
    #: V2: per-DP-rank control ports after the kv_port range)
    mooncake_connector: MooncakeConnector = "MooncakeConnectorV1"
    abort_request_timeout_s: int | None = Field(None, gt=0)
    #: upstream vLLM installed on cuda / cpu hosts (`pip show vllm`): names the storage
    #: connector (SharedStorageConnector before 0.13.0) and says whether P2pNcclConnector
    #: exists (removed by 0.30.0); unset = the current names
    vllm_version: str | None = None
    #: NixlConnector: what D does when a KV load fails (``fail`` in the GB200 recipe;
    #: unset = the installed vLLM's default: recompute at 0.13.0, fail from 0.23.0)
    kv_load_failure_policy: Literal["recompute", "fail"] | None = None
    #: storage: a directory every prefill and decode host mounts (P writes, D reads)
    shared_storage_path: str | None = None
    #: P2pNccl: kv_buffer_size per role, bytes (upstream's xPyD example: P 1e1, D 8e9 --
    #: the decode buffer holds received KV, 5-10 % of GPU memory)
    kv_buffer_size_prefill: str = "1e1"
    kv_buffer_size_decode: str = "8e9"
    #: P2pNccl: how P hands KV to D (PUT_ASYNC is upstream's fastest and default)
    p2p_send_type: Literal["PUT", "GET", "PUT_ASYNC"] = "PUT_ASYNC"
    #: P2pNccl: the port where the proxy (vllm-router --vllm-discovery-address) receives
    #: every instance's ZMQ registration (upstream's example proxy: 30001)
    p2p_discovery_port: int = Field(30001, ge=1, le=65535)

    @property
    def proxy_kv_params(self) -> str:
        """What the proxy demands of a prefill answer (``ascend-pd proxy --kv-params``):
        ``optional`` for the storage connector, whose prefill answers carry no
        kv_transfer_params (D finds the KV under the shared path by the prompt's hash);
        every other connector's decode needs them, so their absence stays a 502."""
        return "optional" if self.type == "storage" else "required"


class InstanceSpec(_Model):
    """One vLLM server (possibly spanning hosts with data parallelism)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    #: hosts of this instance; the first is the DP head and serves the API
    hosts: list[str] = Field(min_length=1)
    #: physical device ids used on each of the hosts
    devices: list[int] = Field(min_length=1)
    tp: int = Field(1, ge=1)
    dp: int = Field(1, ge=1)
    expert_parallel: bool = False
    port: int = Field(ge=1, le=65535)
    #: internal: one API server per instance (DP head), the other hosts run --headless;
    #: external: one API server per DP rank (--data-parallel-rank) on ports port, port+1, …
    #: of each host, all listed in the proxy (upstream's multi-node tutorials from 0.13.0);
    #: hybrid: one API server per host for its local ranks (--data-parallel-hybrid-lb),
    #: every host listed in the proxy (upstream vLLM's GB200 P/D recipe)
    dp_mode: Literal["internal", "external", "hybrid"] = "internal"
    dp_rpc_port: int = Field(13356, ge=1, le=65535)
    max_num_seqs: int | None = Field(None, gt=0)
    max_num_batched_tokens: int | None = Field(None, gt=0)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    enforce_eager: bool | None = None
    #: decode: torchair graph mode (None = role default)
    torchair_graph: bool | None = None
    additional_config: dict[str, Any] = Field(default_factory=dict)
    hccl_buffsize: int | None = Field(None, gt=0)
    omp_num_threads: int = Field(10, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    extra_args: list[str] = Field(default_factory=list)

    @property
    def size(self) -> int:
        return self.tp * self.dp

    @property
    def head(self) -> str:
        return self.hosts[0]


class ProxySpec(_Model):
    host: str
    #: ascend-pd: this package's proxy (KV accounting, drains, SSE errors: docs/proxy.md);
    #: vllm-router: vllm-project/router in PD mode (also speaks P2pNccl's ZMQ discovery)
    kind: Literal["ascend-pd", "vllm-router"] = "ascend-pd"
    port: int = Field(8000, ge=1, le=65535)
    bind: IPAddress = "0.0.0.0"
    #: cache_aware (default): follow the prompt prefix to the instance that computed it,
    #: bounded by load; least loaded when no prefix repeats (docs/proxy.md, measured there)
    policy_prefill: Literal["least_loaded", "round_robin", "power_of_two",
                            "cache_aware"] = "cache_aware"
    policy_decode: Literal["least_loaded", "round_robin", "power_of_two"] = "least_loaded"
    #: admin token for /instances/add|remove; read from this env var when set
    admin_token_env: str | None = None
    #: active ``GET /health`` probing of the backends (unset: the proxy's defaults, 2 s / 2 s
    #: / 3). A vLLM API server starved of CPU, or stalled behind a long KV transfer, can miss
    #: a 2 s probe while it still serves; raise these rather than lose a backend to it.
    health_interval_s: float | None = Field(None, gt=0)
    health_timeout_s: float | None = Field(None, gt=0)
    #: consecutive failed probes that take a backend out of rotation
    eject_after: int | None = Field(None, ge=1)


class SimSpec(_Model):
    """Simulation: hosts run the shipped stand-ins instead of real NPU tools and vLLM."""

    #: sim cluster file describing SoC, devices, IPs and faults per host
    cluster: str
    prefill_ms_per_1k_tokens: float = 20.0
    decode_ms_per_token: float = 2.0


class ClusterSpec(_Model):
    version: Literal[1] = 1
    name: str = "ascend-pd"
    platform: Platform = "ascend"
    hardware: Hardware = "a2"
    backend: Backend = "auto"
    ssh: SSHSpec = SSHSpec()
    hosts: list[HostSpec] = Field(min_length=1)
    model: ModelSpec
    connector: ConnectorSpec = ConnectorSpec()
    prefill: list[InstanceSpec] = Field(min_length=1)
    decode: list[InstanceSpec] = Field(min_length=1)
    proxy: ProxySpec | None = None
    sim: SimSpec | None = None
    #: where launch keeps pid files and logs on every host
    state_dir: AbsPath = "/var/lib/ascend-pd"
    #: Kubernetes rendering options (render/launch --target k8s; docs/kubernetes.md)
    k8s: K8sSpec = K8sSpec()
    #: key path -> 1-based YAML line, filled by the loader (empty for a spec built in code);
    #: findings about a key name its line with it (``spec.loader.key_line``)
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    @property
    def instances(self) -> list[tuple[Literal["prefill", "decode"], InstanceSpec]]:
        return [("prefill", i) for i in self.prefill] + [("decode", i) for i in self.decode]
