"""The ``k8s:`` section of pd.yaml: how the plan becomes Kubernetes objects.

Every key is documented in docs/kubernetes.md. Defaults follow what the field's real
deployments use (vllm-ascend's kthena guide and LWS CI, MindCluster, MindIE-Motor).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: the names the Ascend device plugins advertise (MindCluster A2/A3, MindCluster 950, CCE)
KNOWN_NPU_RESOURCES = ("huawei.com/Ascend910", "huawei.com/npu", "huawei.com/ascend-1980")

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"


class K8sProbes(BaseModel):
    """Probe timing. The startup budget must cover loading the weights (and graph capture)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: seconds the server may take from start to a healthy /health
    startup_budget_s: int = Field(3600, ge=60)
    period_s: int = Field(10, ge=1)
    #: consecutive failed /health probes before the kubelet restarts the container
    liveness_failures: int = Field(6, ge=1)


class K8sSpec(BaseModel):
    """Kubernetes rendering options (``ascend-pd render --target k8s``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = Field("ascend-pd", pattern=_DNS_LABEL, max_length=63)
    #: the vLLM-Ascend server image (None: quay.io/ascend/vllm-ascend:v<version>[-a3])
    image: str | None = None
    #: the ascend-pd image (proxy, preflight); built from the rendered Dockerfile
    tool_image: str = "ascend-pd:latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    #: extended resource of the NPU device plugin (see KNOWN_NPU_RESOURCES)
    npu_resource: str = Field("huawei.com/Ascend910", min_length=3)
    #: auto: a StatefulSet per single-pod instance, a LeaderWorkerSet when it spans pods
    workload: Literal["auto", "statefulset", "leaderworkerset"] = "auto"
    #: pods on the node network (None: on for LLMDataDist, whose ranktable names host IPs)
    host_network: bool | None = None
    #: GLOO/TP/HCCL_SOCKET_IFNAME inside the pod (None: eth0, or the host NIC with hostNetwork)
    socket_ifname: str | None = None
    #: pin each pod to the spec host it was planned on (nodeSelector kubernetes.io/hostname)
    pin_nodes: bool | None = None
    shm_size: str = Field("64Gi", pattern=_QUANTITY)
    cpu: str | None = Field(None, pattern=_QUANTITY)
    memory: str | None = Field(None, pattern=_QUANTITY)
    hccn_conf: str = "/etc/hccn.conf"
    driver_dir: str = "/usr/local/Ascend/driver"
    npu_smi: str = "/usr/local/bin/npu-smi"
    #: where the weights come from: a PVC name, else a hostPath of model.path on every node
    model_pvc: str | None = None
    probes: K8sProbes = K8sProbes()
    #: Volcano: schedulerName volcano and one PodGroup (gang) per instance
    volcano: bool = False
    volcano_queue: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    #: seconds between the proxy's DNS look-ups of the headless Services
    discovery_interval_s: float = Field(5.0, gt=0)
