"""The Kubernetes objects of a deployment, as plain dicts (YAML is written in ``render``).

Per instance: a headless Service and a StatefulSet (``podManagementPolicy: Parallel``), or a
LeaderWorkerSet when the instance spans pods (the DP head is the leader). Every server pod
runs the rendered launch script from its instance's ConfigMap. The proxy is a Deployment +
Service that finds the API servers through the headless Services' DNS names. Why each
field is there: docs/kubernetes.md.
"""

from __future__ import annotations

import math
import posixpath
from typing import Any, Final

import yaml

from ascend_pd.k8s.model import K8sSpec
from ascend_pd.k8s.pods import (
    ENGINE_ID,
    POD_IP,
    SCRIPT_DIR,
    InstancePods,
    PodProcess,
    host_network,
    object_name,
)
from ascend_pd.render.plan import ProxyPlan
from ascend_pd.spec.models import ClusterSpec

Obj = dict[str, Any]
LWS_API: Final[str] = "leaderworkerset.x-k8s.io/v1"
PODGROUP_API: Final[str] = "scheduling.volcano.sh/v1beta1"
LWS_NAME_LABEL: Final[str] = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_LABEL: Final[str] = "leaderworkerset.sigs.k8s.io/group-index"
LWS_WORKER_LABEL: Final[str] = "leaderworkerset.sigs.k8s.io/worker-index"
HASH_ANNOTATION: Final[str] = "ascend-pd.io/launch-files"
READY_PERIOD_S: Final[int] = 5


def default_image(spec: ClusterSpec) -> str:
    """vllm-ascend's release image for the spec's version (A3 images carry ``-a3``)."""
    suffix = "-a3" if spec.hardware == "a3" else ""
    return f"quay.io/ascend/vllm-ascend:v{spec.connector.vllm_ascend_version}{suffix}"


def common_labels(spec: ClusterSpec, k8s: K8sSpec) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": object_name(spec.name),
            "app.kubernetes.io/managed-by": "ascend-pd", **k8s.labels}


def _meta(name: str, spec: ClusterSpec, k8s: K8sSpec, **labels: str) -> Obj:
    return {"name": name, "namespace": k8s.namespace,
            "labels": {**common_labels(spec, k8s), **labels}}


def _selector(inst: InstancePods) -> dict[str, str]:
    return {"app.kubernetes.io/name": inst.name, "ascend-pd.io/role": inst.role}


def _volumes(spec: ClusterSpec, k8s: K8sSpec, inst: InstancePods) -> tuple[list[Obj],
                                                                          list[Obj]]:
    def host_path(path: str, kind: str) -> Obj:
        return {"hostPath": {"path": path, "type": kind}}

    model_dir = spec.model.path
    vols: list[tuple[str, str, Obj]] = [
        ("launch", SCRIPT_DIR, {"configMap": {"name": f"{inst.name}-launch",
                                              "defaultMode": 0o555}}),
        ("hccn-conf", "/etc/hccn.conf", host_path(k8s.hccn_conf, "File")),
        ("driver", k8s.driver_dir, host_path(k8s.driver_dir, "Directory")),
        ("npu-smi", "/usr/local/bin/npu-smi", host_path(k8s.npu_smi, "File")),
        ("model", model_dir,
         {"persistentVolumeClaim": {"claimName": k8s.model_pvc, "readOnly": True}}
         if k8s.model_pvc else host_path(model_dir, "Directory")),
    ]
    if spec.connector.type == "llmdatadist":
        path = spec.connector.ranktable_path
        vols.append(("ranktable", path, host_path(path, "File")))
    volumes = [{"name": n, **src} for n, _, src in vols]
    mounts = [{"name": n, "mountPath": path, "readOnly": True} for n, path, _ in vols]
    volumes.append({"name": "shm", "emptyDir": {"medium": "Memory",
                                                "sizeLimit": k8s.shm_size}})
    mounts.append({"name": "shm", "mountPath": "/dev/shm"})
    return volumes, mounts


def _probes(k8s: K8sSpec, port: int) -> Obj:
    if not k8s.probes.enabled:
        return {}
    get = {"httpGet": {"path": "/health", "port": port}}
    period = k8s.probes.period_s
    return {
        "startupProbe": {**get, "periodSeconds": period,
                         "failureThreshold": math.ceil(k8s.probes.startup_budget_s / period)},
        "readinessProbe": {**get, "periodSeconds": READY_PERIOD_S, "failureThreshold": 3},
        "livenessProbe": {**get, "periodSeconds": period,
                          "failureThreshold": k8s.probes.liveness_failures},
    }


def _env(pod: PodProcess, engine_id: Obj) -> list[Obj]:
    ip = {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    env = [{"name": POD_IP, **ip}]
    env += [{"name": key, **ip} for key in pod.from_pod_ip]
    return [*env, {"name": ENGINE_ID, **engine_id}]


def _container(spec: ClusterSpec, k8s: K8sSpec, inst: InstancePods, pod: PodProcess,
               script: str, engine_id: Obj, mounts: list[Obj]) -> Obj:
    npus = str(inst.npus)
    resources: dict[str, str] = {k8s.npu_resource: npus}
    if k8s.cpu:
        resources["cpu"] = k8s.cpu
    if k8s.memory:
        resources["memory"] = k8s.memory
    container: Obj = {
        "name": "vllm",
        "image": k8s.image or default_image(spec),
        "imagePullPolicy": k8s.image_pull_policy,
        "command": ["bash", posixpath.join(SCRIPT_DIR, script)],
        "env": _env(pod, engine_id),
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": mounts,
    }
    if pod.process.head:
        container["ports"] = [{"name": "http", "containerPort": inst.api_port}]
        container.update(_probes(k8s, inst.api_port))
    return container


def _pod_spec(spec: ClusterSpec, k8s: K8sSpec, inst: InstancePods, pod: PodProcess,
              script: str, engine_id: Obj, nodes: list[str]) -> Obj:
    volumes, mounts = _volumes(spec, k8s, inst)
    out: Obj = {}
    if host_network(spec, k8s):
        out["hostNetwork"] = True
        out["dnsPolicy"] = "ClusterFirstWithHostNet"
    if k8s.volcano:
        out["schedulerName"] = "volcano"
    if nodes:
        out["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{
                "key": "kubernetes.io/hostname", "operator": "In", "values": nodes}]}]}}}
    out["containers"] = [_container(spec, k8s, inst, pod, script, engine_id, mounts)]
    out["volumes"] = volumes
    return out


def _template(spec: ClusterSpec, k8s: K8sSpec, inst: InstancePods, pod: PodProcess,
              script: str, engine_id: Obj, nodes: list[str]) -> Obj:
    annotations = {HASH_ANNOTATION: inst.files_hash}
    if k8s.volcano:
        annotations["scheduling.k8s.io/group-name"] = inst.name
    return {"metadata": {"labels": {**common_labels(spec, k8s), **_selector(inst)},
                         "annotations": annotations},
            "spec": _pod_spec(spec, k8s, inst, pod, script, engine_id, nodes)}


def _pinned(spec: ClusterSpec, k8s: K8sSpec, hosts: list[str]) -> list[str]:
    pin = k8s.pin_nodes if k8s.pin_nodes is not None else spec.connector.type == "llmdatadist"
    return hosts if pin else []


def instance_objects(spec: ClusterSpec, k8s: K8sSpec, inst: InstancePods) -> list[Obj]:
    """The Service(s) and the workload of one instance (its ConfigMap comes from kustomize)."""
    name, hosts = inst.name, inst.instance.hosts
    headless: Obj = {"apiVersion": "v1", "kind": "Service",
                     "metadata": _meta(f"{name}-api" if inst.lws else name, spec, k8s,
                                       **_selector(inst)),
                     "spec": {"clusterIP": "None",
                              "selector": {**_selector(inst)},
                              "ports": [{"name": "http", "port": inst.api_port,
                                         "targetPort": inst.api_port}]}}
    objects: list[Obj] = [headless]
    if k8s.volcano:
        gang: Obj = {"minMember": len(inst.pods),
                     "minResources": {k8s.npu_resource: str(inst.npus * len(inst.pods))}}
        if k8s.volcano_queue:
            gang["queue"] = k8s.volcano_queue
        objects.append({"apiVersion": PODGROUP_API, "kind": "PodGroup",
                        "metadata": _meta(name, spec, k8s), "spec": gang})
    if not inst.lws:
        engine: Obj = {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        objects.append({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": _meta(name, spec, k8s, **_selector(inst)),
            "spec": {"serviceName": name, "replicas": 1,
                     "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": _selector(inst)},
                     "template": _template(spec, k8s, inst, inst.head, inst.head.script,
                                           engine, _pinned(spec, k8s, hosts[:1]))}})
        return objects
    # The leader's pod name is <lws>-<group index>; every pod of a group shares it as the
    # engine id, the way every host of an SSH-launched instance shares the instance name.
    group_index: Obj = {"name": "LWS_GROUP_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.labels['{LWS_GROUP_LABEL}']"}}}
    engine = {"value": f"{name}-$(LWS_GROUP_INDEX)"}
    leader = _template(spec, k8s, inst, inst.head, inst.head.script, engine,
                       _pinned(spec, k8s, hosts[:1]))
    group: Obj = {"size": len(inst.pods), "restartPolicy": "RecreateGroupOnPodRestart"}
    if len(inst.pods) == 1:
        # A group of one: LWS runs the worker template as the leader.
        group["workerTemplate"] = leader
    else:
        # Workers differ only in their DP start rank: each runs the script of its index.
        group["leaderTemplate"] = leader
        group["workerTemplate"] = _template(spec, k8s, inst, inst.pods[1],
                                            "pod-$(LWS_WORKER_INDEX).sh", engine,
                                            _pinned(spec, k8s, hosts[1:]))
    for template in (group.get("leaderTemplate"), group["workerTemplate"]):
        if template is not None:
            template["spec"]["containers"][0]["env"].insert(0, group_index)
    objects.append({
        "apiVersion": LWS_API, "kind": "LeaderWorkerSet",
        "metadata": _meta(name, spec, k8s, **_selector(inst)),
        "spec": {"replicas": 1, "startupPolicy": "LeaderCreated",
                 "leaderWorkerTemplate": group}})
    # The API Service selects leaders only: workers run headless and serve no HTTP.
    headless["spec"]["selector"][LWS_WORKER_LABEL] = "0"
    return objects


def discovery_name(inst: InstancePods, namespace: str) -> str:
    """The DNS name of an instance's API Service: one A record per ready API pod."""
    service = f"{inst.name}-api" if inst.lws else inst.name
    return f"{service}.{namespace}.svc"


def proxy_args(proxy: ProxyPlan, instances: list[InstancePods], k8s: K8sSpec) -> list[str]:
    """The plan's proxy args with its fixed targets replaced by DNS discovery."""
    args: list[str] = []
    words = iter(proxy.args)
    for word in words:
        if word in ("--prefill", "--decode"):
            next(words)
        else:
            args.append(word)
    for inst in instances:
        args += [f"--discover-{inst.role}",
                 f"{discovery_name(inst, k8s.namespace)}:{inst.api_port}"]
    return [*args, "--discover-interval", f"{k8s.discovery_interval_s:g}"]


def proxy_objects(spec: ClusterSpec, k8s: K8sSpec, proxy: ProxyPlan,
                  instances: list[InstancePods]) -> list[Obj]:
    name = f"{object_name(spec.name)}-proxy"
    selector = {"app.kubernetes.io/name": name, "ascend-pd.io/role": "proxy"}
    container: Obj = {
        "name": "proxy", "image": k8s.tool_image, "imagePullPolicy": k8s.image_pull_policy,
        "command": ["ascend-pd", "proxy", *proxy_args(proxy, instances, k8s)],
        "ports": [{"name": "http", "containerPort": proxy.port}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": proxy.port},
                           "periodSeconds": READY_PERIOD_S},
        "livenessProbe": {"tcpSocket": {"port": proxy.port}, "periodSeconds": 10},
    }
    if spec.proxy is not None and spec.proxy.admin_token_env:
        var = spec.proxy.admin_token_env
        container["env"] = [{"name": var, "valueFrom": {"secretKeyRef": {
            "name": f"{name}-admin", "key": "token"}}}]
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": _meta(name, spec, k8s, **selector),
         "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": {**common_labels(spec, k8s),
                                                       **selector}},
                               "spec": {"containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, spec, k8s, **selector),
         "spec": {"selector": selector,
                  "ports": [{"name": "http", "port": proxy.port, "targetPort": proxy.port}]}},
    ]


def namespace_object(spec: ClusterSpec, k8s: K8sSpec) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": k8s.namespace, "labels": common_labels(spec, k8s)}}


def dump_yaml(docs: list[Obj]) -> str:
    """Objects as one multi-document YAML text (keys in the order they were built)."""
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, width=1000) for d in docs)
