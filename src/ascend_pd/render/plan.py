"""The deployment plan: pure computation of what runs where, from a spec.

Built once per command by :func:`build_plan`; everything else reads it: the validation
findings (``render.checks``), the rendered files and manifest (``render.deploy``), the launch
units (``launch``), the proxy configuration and doctor's port list (:meth:`ports_to_check`).

One :class:`ProcessPlan` per (instance, host): role, DP layout (size-local, start rank,
head or headless), visible devices, environment, the server argv and kv-transfer-config.
Templates only print these values; everything a test might assert is computed here.
"""

from __future__ import annotations

import logging
import posixpath
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ascend_pd.errors import SpecError
from ascend_pd.proxy.argv import proxy_args
from ascend_pd.proxy.config import BackendAddress, Flow, ProxyConfig
from ascend_pd.releases import ReleaseFacts, Resolution, resolve
from ascend_pd.render.docker import container_name, docker_argv
from ascend_pd.render.ports import PortPlan, dp_local, plan_ports
from ascend_pd.render.router import router_args
from ascend_pd.render.serve import DPSlot, Role, kv_transfer_config, sim_argv, vllm_argv
from ascend_pd.spec.models import ClusterSpec, HostSpec, InstanceSpec

log = logging.getLogger(__name__)

#: HCCL_BUFFSIZE (MB) per role when the spec does not say: D's EP all-to-all needs more.
DEFAULT_HCCL_BUFFSIZE: Final[dict[str, int]] = {"prefill": 256, "decode": 1024}
ALLOC_CONF: Final[str] = "expandable_segments:True"


@dataclass(frozen=True)
class ProcessPlan:
    """One server process: an instance's share of one host."""

    role: Role
    instance: str
    host: str
    address: str
    head: bool
    dp_size: int
    dp_size_local: int
    dp_start_rank: int
    devices: list[int]
    env: dict[str, str]
    #: the real ``vllm serve`` argv (also recorded in sim mode, for reference)
    argv: list[str]
    kv_transfer_config: dict[str, Any]
    bind: str
    #: sim mode: arguments after ``python -m ascend_pd.simserver`` (None = placeholder)
    sim_argv: list[str] | None
    #: ``docker run … IMAGE`` prefix, or None for runtime: host (always None in sim mode)
    docker_argv: list[str] | None
    #: its docker container name (with ``docker_argv``), removed by ``stop`` after SIGKILL
    container: str | None
    log: str
    pid: str
    #: the unit name before ``@host``: the instance, or ``<instance>-dp<R>`` in external DP
    unit: str = ""

    @property
    def name(self) -> str:
        return f"{self.unit or self.instance}@{self.host}"

    @property
    def serving(self) -> str:
        """``api`` for the DP head (serves HTTP), ``headless`` for the others."""
        return "api" if self.head else "headless"

    @property
    def api_port(self) -> int | None:
        return int(self.argv[self.argv.index("--port") + 1]) if self.head else None

    @property
    def visible_devices(self) -> str:
        for key in ("ASCEND_RT_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
            if key in self.env:
                return self.env[key]
        return ",".join(str(d) for d in self.devices)  # cpu: no device selection

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name, "serving": self.serving,
                "api_port": self.api_port}


@dataclass(frozen=True)
class ProxyPlan:
    """The P→D proxy: where it runs and which API servers it balances."""

    host: str
    address: str
    port: int
    #: arguments after ``ascend-pd proxy``
    args: list[str]
    prefill: list[str]
    decode: list[str]
    log: str
    pid: str
    #: ``prefill-first`` or ``decode-first`` (layerwise connectors, with the metaserver URL
    #: the decode instances call back)
    flow: str = "prefill-first"
    metaserver_url: str | None = None
    #: ``ascend-pd`` (``args`` follow ``ascend-pd proxy``) or ``vllm-router`` (``args``
    #: follow ``vllm-router``); both are one unit with a pid file, a log and ``/health``
    kind: str = "ascend-pd"
    #: ``required``: a prefill answer without kv_transfer_params is a 502 (NIXL, Mooncake);
    #: ``optional``: the storage connector hands KV over through the shared path instead
    kv_params: str = "required"
    #: the ascend-pd proxy's settings (``args`` are built from it; the vllm-router kind
    #: keeps it for ``ascend-pd proxy -c``); no secrets, only their env var names in ``args``
    config: ProxyConfig | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("config")  # args say it; the JSON shape stays what docs/json.md describes
        return data


@dataclass
class DeploymentPlan:
    """Everything ``render`` writes and ``launch`` starts, in start order."""

    spec: ClusterSpec
    name: str
    connector: str
    vllm_ascend_version: str
    #: which release's facts the plan follows (``release.note`` when not an exact match);
    #: None when the version cannot be resolved: ``release_error`` says why, and the plan
    #: then has no processes (nothing can be rendered for it)
    release: Resolution | None
    release_error: SpecError | None
    sim: bool
    python: str
    processes: list[ProcessPlan] = field(default_factory=list)
    proxy: ProxyPlan | None = None
    ports: PortPlan = field(default_factory=PortPlan)

    @property
    def facts(self) -> ReleaseFacts | None:
        return self.release.facts if self.release else None

    def port_owners(self, host: str) -> dict[int, tuple[str, str]]:
        """Every port this plan opens on ``host``: port -> (what, unit ``NAME@HOST``)."""
        return self.ports.owners(host)

    def ports_to_check(self, host: str) -> list[int]:
        """The ports that must be free on ``host`` before launch (doctor's list): API, DP RPC,
        LLMDataDist RPC and Mooncake kv_port ranges, and the proxy."""
        return sorted(self.port_owners(host))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "connector": self.connector,
                "vllm_ascend_version": self.vllm_ascend_version, "sim": self.sim,
                "processes": [p.to_dict() for p in self.processes],
                "proxy": self.proxy.to_dict() if self.proxy else None,
                "ports": self.ports.to_dict()}


def endpoint(address: str, port: int) -> str:
    """``host:port`` with IPv6 addresses bracketed."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def shared_hosts(spec: ClusterSpec) -> set[str]:
    """Hosts that run both a prefill and a decode process (need HCCL_INTRA_ROCE_ENABLE=1)."""
    p_hosts = {h for inst in spec.prefill for h in inst.hosts}
    return p_hosts & {h for inst in spec.decode for h in inst.hosts}


def _upstream_env(spec: ClusterSpec, inst: InstanceSpec, host: HostSpec,
                  ports: PortPlan) -> dict[str, str]:
    """Platform cuda / cpu (upstream vLLM): no ASCEND_* / HCCL_* variables."""
    env = {"VLLM_HOST_IP": host.address, "GLOO_SOCKET_IFNAME": host.nic,
           "OMP_NUM_THREADS": str(inst.omp_num_threads)}
    if spec.platform == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in inst.devices)
        env["NCCL_SOCKET_IFNAME"] = host.nic
    kv_port = ports.instances[inst.name].kv_port
    if spec.connector.type == "nixl" and kv_port is not None:
        # vLLM's NixlConnector listens for the handshake on this port + its DP rank, on
        # this address (vllm/envs.py, nixl_connector.py): one range per instance.
        env["VLLM_NIXL_SIDE_CHANNEL_HOST"] = host.address
        env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = str(kv_port)
    return env


def _env(
    spec: ClusterSpec, role: Role, inst: InstanceSpec, host: HostSpec, ports: PortPlan,
    facts: ReleaseFacts, shared: set[str], devices: list[int],
) -> dict[str, str]:
    if spec.platform != "ascend":
        return {**_upstream_env(spec, inst, host, ports), **host.env, **inst.env}
    env = {
        "HCCL_IF_IP": host.address,
        # Always explicit: the LLMDataDist connector matches the ranktable server_id
        # against vLLM's get_ip(), which otherwise follows the default route.
        "VLLM_HOST_IP": host.address,
        "GLOO_SOCKET_IFNAME": host.nic,
        "TP_SOCKET_IFNAME": host.nic,
        "HCCL_SOCKET_IFNAME": host.nic,
        # Exact comma-separated string: the connector compares device ids as strings.
        "ASCEND_RT_VISIBLE_DEVICES": ",".join(str(d) for d in devices),
        "OMP_PROC_BIND": "false",
        "OMP_NUM_THREADS": str(inst.omp_num_threads),
        "HCCL_BUFFSIZE": str(inst.hccl_buffsize or DEFAULT_HCCL_BUFFSIZE[role]),
        "PYTORCH_NPU_ALLOC_CONF": ALLOC_CONF,
    }
    inst_ports = ports.instances[inst.name]
    llmdd = spec.connector.type == "llmdatadist"
    if llmdd and facts.reads_ranktable:
        env["DISAGGREGATED_PREFILL_RANK_TABLE_PATH"] = spec.connector.ranktable_path
    if llmdd and facts.llmdd_rpc_port_env:
        env[facts.llmdd_rpc_port_env] = str(inst_ports.rpc_base)
    # Only a value the user chose is written, under the name this release reads (renamed
    # NIXL -> MOONCAKE in 0.18.0); otherwise the release's own default applies.
    abort = facts.llmdd_abort_timeout_env if llmdd else facts.mooncake_abort_timeout_env
    if abort is not None and spec.connector.abort_request_timeout_s is not None:
        env[abort] = str(spec.connector.abort_request_timeout_s)
    if host.name in shared:
        env["HCCL_INTRA_ROCE_ENABLE"] = "1"
    return {**env, **host.env, **inst.env}


def dp_slots(inst: InstanceSpec) -> list[tuple[str, str, DPSlot, list[int]]]:
    """(host, unit name before ``@host``, DP slot, devices) of every process of ``inst``.

    Internal DP (default): one process per host, the first serves the API, the others run
    ``--headless``. External DP: one process per DP rank (``<instance>-dp<R>``) on its
    share of the host's devices, API port ``port + local index``. Hybrid DP: one process per
    host like internal DP, but every one serves the API for its local ranks.
    """
    local = dp_local(inst)
    if inst.dp_mode == "hybrid" and inst.dp > 1:
        return [(host, inst.name, DPSlot(inst.port, j * local, local, hybrid=True),
                 list(inst.devices)) for j, host in enumerate(inst.hosts)]
    if inst.dp_mode == "external" and inst.dp > 1:
        return [(host, f"{inst.name}-dp{j * local + i}",
                 DPSlot(inst.port + i, j * local + i, 1, external=True),
                 list(inst.devices[i * inst.tp:(i + 1) * inst.tp]))
                for j, host in enumerate(inst.hosts) for i in range(local)]
    return [(host, inst.name, DPSlot(inst.port if j == 0 else None, j * local, local),
             list(inst.devices)) for j, host in enumerate(inst.hosts)]


def build_plan(spec: ClusterSpec, *, python: str | None = None) -> DeploymentPlan:
    """Compute the deployment plan of ``spec``.

    Args:
        spec: a loaded, structurally valid spec.
        python: sim mode: the interpreter the launch scripts run the simulated server with
            (default: this process's ``sys.executable``).
    """
    log.debug("building the deployment plan of '%s'", spec.name)
    release: Resolution | None = None
    error: SpecError | None = None
    try:
        release = resolve(spec.connector.vllm_ascend_version)
    except SpecError as exc:
        error = exc
    ports = plan_ports(spec)
    shared = shared_hosts(spec)
    sim = spec.sim is not None
    plan = DeploymentPlan(spec, spec.name, spec.connector.type,
                          spec.connector.vllm_ascend_version, release, error, sim,
                          python or sys.executable, ports=ports)
    if release is None:
        return plan
    facts = release.facts
    run_dir = posixpath.join(spec.state_dir, "run")
    log_dir = posixpath.join(spec.state_dir, "logs")
    for role, inst in spec.instances:
        head = spec.host(inst.head)
        kv_config = kv_transfer_config(spec, role, inst, ports.instances[inst.name], facts)
        for host_name, name, slot, devices in dp_slots(inst):
            host = spec.host(host_name)
            env = _env(spec, role, inst, host, ports, facts, shared, devices)
            # Real servers listen everywhere (the recipes' 0.0.0.0); simulated ones bind the
            # host address so several simulated hosts can share one machine.
            # Platform cpu is for testing on one machine (loopback hosts): same as simulated.
            bind = host.address if sim or spec.platform == "cpu" else "0.0.0.0"
            argv = vllm_argv(spec, role, inst, head_address=head.address, slot=slot, bind=bind,
                             kv_config=kv_config, facts=facts)
            docker = host.runtime == "docker" and not sim
            serves = slot.port is not None
            plan.processes.append(ProcessPlan(
                role=role, instance=inst.name, host=host.name, address=host.address,
                head=serves, dp_size=inst.dp, dp_size_local=slot.local,
                dp_start_rank=slot.start_rank, devices=devices, env=env, argv=argv,
                kv_transfer_config=kv_config, bind=bind,
                sim_argv=(sim_argv(spec, role, inst, bind=bind, port=slot.port,
                                   flow=proxy_flow(spec, facts))
                          if sim and slot.port is not None else None),
                docker_argv=docker_argv(spec, host, name, list(env)) if docker else None,
                container=container_name(spec, host, name) if docker else None,
                log=posixpath.join(log_dir, f"{name}@{host.name}.log"),
                pid=posixpath.join(run_dir, f"{name}@{host.name}.pid"),
                unit=name,
            ))
    if spec.proxy is not None:
        plan.proxy = _proxy(spec, facts, plan.processes, run_dir, log_dir)
    return plan


def proxy_flow(spec: ClusterSpec, facts: ReleaseFacts) -> Flow:
    """``prefill-first`` or ``decode-first`` (layerwise): what the connector's proxy does,
    from the release facts (an unregistered connector: prefill-first; a check refuses it)."""
    connector = facts.connector(spec.connector.mooncake_connector)
    if spec.connector.type == "mooncake" and connector is not None \
            and connector.flow == "decode-first":
        return "decode-first"
    return "prefill-first"


def _proxy(
    spec: ClusterSpec, facts: ReleaseFacts, processes: list[ProcessPlan], run_dir: str,
    log_dir: str,
) -> ProxyPlan:
    assert spec.proxy is not None
    proxy = spec.proxy
    # Only DP heads run an API server; a headless host has nothing listening.
    api = {role: tuple(BackendAddress(p.address, p.api_port) for p in processes
                       if p.role == role and p.api_port is not None)
           for role in ("prefill", "decode")}
    name = f"proxy@{proxy.host}"
    files = {"log": posixpath.join(log_dir, f"{name}.log"),
             "pid": posixpath.join(run_dir, f"{name}.pid")}
    flow = proxy_flow(spec, facts)
    metaserver = None
    if flow == "decode-first":
        # D calls the proxy back; a wildcard bind is no address D can reach, so the URL
        # always names the proxy host's address.
        metaserver = f"http://{endpoint(spec.host(proxy.host).address, proxy.port)}/v1/metaserver"
    health = {key: value for key in ("health_interval_s", "health_timeout_s", "eject_after")
              if (value := getattr(proxy, key)) is not None}
    # The one place the spec's proxy: section becomes proxy settings: the rendered script
    # starts the proxy with exactly these (proxy_args), `ascend-pd proxy -c` serves them.
    config = ProxyConfig(
        prefill=api["prefill"], decode=api["decode"], host=proxy.bind, port=proxy.port,
        policy_prefill=proxy.policy_prefill, policy_decode=proxy.policy_decode, flow=flow,
        metaserver_url=metaserver, kv_params=spec.connector.proxy_kv_params, **health)
    args = (router_args(spec, config) if proxy.kind == "vllm-router"
            else proxy_args(config, admin_token_env=proxy.admin_token_env))
    return ProxyPlan(host=proxy.host, address=spec.host(proxy.host).address, port=proxy.port,
                     args=args, prefill=[str(a) for a in config.prefill],
                     decode=[str(a) for a in config.decode],
                     flow=flow, metaserver_url=metaserver, kind=proxy.kind,
                     kv_params=config.kv_params, config=config, **files)
