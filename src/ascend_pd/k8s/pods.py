"""The deployment plan's processes as pods: what a pod knows only at run time.

The plan (``ascend_pd.render.plan``) is computed for hosts with fixed addresses. In a
cluster, a pod's address, its DP head's address and a unique engine id are known only
when the pod starts. This module takes each :class:`ProcessPlan` as it is and marks just
those words: the env file loses the address variables (the pod spec sets them from
``status.podIP``), the socket interfaces become the pod's, and the argv words that hold
an address or the engine id become shell references to pod environment variables. Every
other env value and argv word is the plan's, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from ascend_pd import __version__
from ascend_pd.k8s.model import K8sSpec
from ascend_pd.render.plan import DeploymentPlan, ProcessPlan
from ascend_pd.render.templates import argv_lines, render_template, shquote
from ascend_pd.spec.models import ClusterSpec, InstanceSpec

#: env vars the launch scripts reference; the pod spec defines them
POD_IP = "POD_IP"
ENGINE_ID = "ENGINE_ID"
LEADER_ADDRESS = "LWS_LEADER_ADDRESS"
#: the socket-interface variables of the plan (host NIC names)
IFNAME_KEYS = ("GLOO_SOCKET_IFNAME", "TP_SOCKET_IFNAME", "HCCL_SOCKET_IFNAME")
#: where the instance ConfigMap is mounted in its pods
SCRIPT_DIR = "/opt/ascend-pd/launch"


class PodWord(str):
    """An argv word assembled at run time: literal parts and ``$VAR`` references.

    ``str(word)`` reads like the shell would show it (``${POD_IP}``), so grouping and
    display work as for plain words; :func:`shell_word` quotes it for bash.
    """

    parts: tuple[tuple[str, bool], ...]

    def __new__(cls, parts: tuple[tuple[str, bool], ...]) -> PodWord:
        text = "".join("${" + p + "}" if ref else p for p, ref in parts)
        word = super().__new__(cls, text)
        word.parts = parts
        return word


def ref(var: str) -> PodWord:
    return PodWord(((var, True),))


def shell_word(word: str) -> str:
    """Quote ``word`` for bash: literals single-quoted, references double-quoted."""
    if not isinstance(word, PodWord):
        return shquote(word)
    return "".join('"${' + p + '}"' if is_ref else shquote(p) for p, is_ref in word.parts
                   if is_ref or p)


@dataclass(frozen=True)
class PodProcess:
    """One pod slot of an instance: index 0 is the DP head (LWS leader / StatefulSet pod)."""

    process: ProcessPlan
    index: int
    #: the env file's variables (the plan's, minus those the pod spec sets)
    env: dict[str, str]
    #: env vars the pod spec sets from ``status.podIP``
    from_pod_ip: tuple[str, ...]
    argv: list[str]

    @property
    def script(self) -> str:
        return f"pod-{self.index}.sh"

    @property
    def env_file(self) -> str:
        return f"pod-{self.index}.env"


@dataclass(frozen=True)
class InstancePods:
    """One instance of the plan as pods."""

    role: str
    instance: InstanceSpec
    #: the DNS-1035 name of its objects
    name: str
    pods: list[PodProcess]
    #: ConfigMap data: the rendered launch script and env file of each pod slot
    files: dict[str, str]

    @property
    def head(self) -> PodProcess:
        return self.pods[0]

    #: a LeaderWorkerSet (spans pods, or the spec asks for one) instead of a StatefulSet
    lws: bool

    @property
    def api_port(self) -> int:
        port = self.head.process.api_port
        assert port is not None
        return port

    @property
    def npus(self) -> int:
        return len(self.instance.devices)

    @property
    def files_hash(self) -> str:
        """Changes whenever a script or env file does, so the pods roll."""
        digest = hashlib.sha256(json.dumps(self.files, sort_keys=True).encode())
        return digest.hexdigest()[:16]


def object_name(name: str) -> str:
    """A spec name as a Kubernetes object name (DNS-1035: lowercase, '-', no dots)."""
    out = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return out if out[:1].isalpha() else f"x-{out}"


def host_network(spec: ClusterSpec, k8s: K8sSpec) -> bool:
    # LLMDataDist matches the ranktable's server_id (a host IP) against the server's
    # own IP, so its pods must carry the host's address.
    return k8s.host_network if k8s.host_network is not None else (
        spec.connector.type == "llmdatadist")


def socket_ifname(spec: ClusterSpec, k8s: K8sSpec) -> str:
    if k8s.socket_ifname:
        return k8s.socket_ifname
    return spec.hosts[0].nic if host_network(spec, k8s) else "eth0"


def _argv(p: ProcessPlan, engine_id: str) -> list[str]:
    argv: list[str] = list(p.argv)
    if "--data-parallel-address" in argv:
        i = argv.index("--data-parallel-address") + 1
        # The head binds its own address; the others find it through the LWS leader name.
        argv[i] = ref(POD_IP if p.head else LEADER_ADDRESS)
    i = argv.index("--kv-transfer-config") + 1
    # Every replica of an instance needs its own engine id; the pod spec sets ENGINE_ID.
    needle = '"engine_id":' + json.dumps(engine_id)
    before, found, after = argv[i].partition(needle)
    if found:
        argv[i] = PodWord(((before + '"engine_id":"', False), (ENGINE_ID, True),
                           ('"' + after, False)))
    return argv


def pod_process(p: ProcessPlan, index: int, spec: ClusterSpec, k8s: K8sSpec) -> PodProcess:
    nic = spec.host(p.host).nic
    ifname = socket_ifname(spec, k8s)
    env: dict[str, str] = {}
    from_ip: list[str] = []
    for key, value in p.env.items():
        if value == p.address:
            from_ip.append(key)
        elif key in IFNAME_KEYS and value == nic:
            env[key] = ifname
        elif key == "ASCEND_RT_VISIBLE_DEVICES":
            # The device plugin mounts only the allocated NPUs; inside the container
            # they are numbered from 0, whatever their physical ids on the node.
            env[key] = ",".join(str(i) for i in range(len(p.devices)))
        else:
            env[key] = value
    engine_id = str(p.kv_transfer_config.get("engine_id", p.instance))
    return PodProcess(process=p, index=index, env=env, from_pod_ip=tuple(from_ip),
                      argv=_argv(p, engine_id))


def _files(pods: list[PodProcess], role: str, name: str, spec_path: str | None) -> dict[str, str]:
    files: dict[str, str] = {}
    header = {"version": __version__, "spec_path": spec_path or "<in-memory spec>"}
    for pod in pods:
        p = pod.process
        title = (f"{role} instance {p.instance}, pod {pod.index} of {len(pods)} "
                 f"({p.serving}); HCCL_IF_IP/VLLM_HOST_IP come from the pod")
        files[pod.env_file] = render_template(
            "_env.sh.j2", p=replace(p, env=pod.env), title=f"environment of {title}",
            **header)
        files[pod.script] = render_template(
            "k8s-launch.sh.j2", pod=pod, p=p, total=len(pods), env_file=pod.env_file,
            lines=[" ".join(shell_word(w) for w in line) for line in argv_lines(pod.argv)],
            title=f"launch script of {title}", object_name=name, **header)
    return files


def instance_pods(spec: ClusterSpec, plan: DeploymentPlan, k8s: K8sSpec,
                  spec_path: str | None = None) -> list[InstancePods]:
    """Every instance of ``plan`` as pods, in the plan's order (prefill first)."""
    out: list[InstancePods] = []
    for role, inst in spec.instances:
        procs = [p for p in plan.processes if p.instance == inst.name]
        pods = [pod_process(p, j, spec, k8s) for j, p in enumerate(procs)]
        name = object_name(inst.name)
        out.append(InstancePods(role=role, instance=inst, name=name, pods=pods,
                                files=_files(pods, role, name, spec_path),
                                lws=k8s.workload == "leaderworkerset" or len(pods) > 1))
    return out
