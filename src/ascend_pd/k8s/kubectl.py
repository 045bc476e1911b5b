"""``launch|status|stop --target k8s``: ``kubectl`` through the runner seam.

launch renders the kustomize directory, then ``kubectl apply -k`` and waits for every
workload (``rollout status`` for StatefulSets and the proxy Deployment, ``wait
--for=condition=Available`` for LeaderWorkerSets, which ``rollout`` does not know); status is
``kubectl get -k DIR -o json`` read back per workload; stop is ``kubectl delete -k``. Every
call has a timeout; kubectl's own error text is kept for the user.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ascend_pd.errors import LaunchError
from ascend_pd.k8s.render import MANIFEST, k8s_files, render_k8s
from ascend_pd.runners.base import CommandResult, CommandRunner
from ascend_pd.spec.models import ClusterSpec

#: kubectl resource names of the kinds render writes (CRDs with their group: unambiguous)
RESOURCES: Final[dict[str, str]] = {
    "ConfigMap": "configmap", "Service": "service", "StatefulSet": "statefulset",
    "Deployment": "deployment", "LeaderWorkerSet": "leaderworkersets.leaderworkerset.x-k8s.io",
    "PodGroup": "podgroups.scheduling.volcano.sh"}
#: kinds whose readiness launch waits for and status reports
WORKLOADS: Final[tuple[str, ...]] = ("StatefulSet", "LeaderWorkerSet", "Deployment")
APPLY_TIMEOUT_S: Final[float] = 120.0


@dataclass
class Workload:
    kind: str
    name: str
    ready: int = 0
    wanted: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.wanted > 0 and self.ready >= self.wanted

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "ready": self.ready,
                "wanted": self.wanted, "ok": self.ok, "note": self.note}


@dataclass
class K8sAction:
    """What one launch/status/stop did: the kubectl calls and the workloads seen."""

    action: str
    namespace: str
    deploy_dir: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    objects: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(w.ok for w in self.workloads)

    def record(self, result: CommandResult) -> CommandResult:
        self.calls.append({"argv": list(result.argv), "exit_code": result.exit_code,
                           "duration_s": round(result.duration_s, 3),
                           "stderr": result.tail("stderr")})
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"target": "k8s", "action": self.action, "ok": self.ok,
                "namespace": self.namespace, "deploy_dir": self.deploy_dir,
                "workloads": [w.to_dict() for w in self.workloads], "calls": self.calls,
                "objects": self.objects, "error": self.error}


def _objects(spec: ClusterSpec) -> list[tuple[str, str]]:
    """(kind, name) of every object render writes for ``spec`` (computed, not read back)."""
    files, _ = k8s_files(spec)
    manifest = json.loads(next(f.text for f in files if f.name == MANIFEST))
    return [(kind, name) for kind, _, name in (str(r).partition("/")
                                               for r in manifest["objects"])]


def _workloads(spec: ClusterSpec) -> list[Workload]:
    return [Workload(kind, name) for kind, name in _objects(spec) if kind in WORKLOADS]


def _targets(spec: ClusterSpec) -> list[str]:
    # The Namespace is left alone: it may hold other things.
    return [f"{RESOURCES[kind]}/{name}" for kind, name in _objects(spec) if kind in RESOURCES]


def _wait_argv(kubectl: str, ns: str, w: Workload, timeout_s: float) -> list[str]:
    target = f"{RESOURCES[w.kind]}/{w.name}"
    if w.kind == "LeaderWorkerSet":
        return [kubectl, "wait", "-n", ns, "--for=condition=Available", target,
                f"--timeout={int(timeout_s)}s"]
    return [kubectl, "rollout", "status", "-n", ns, target, f"--timeout={int(timeout_s)}s"]


def launch(spec: ClusterSpec, runner: CommandRunner, deploy_dir: str | Path, *,
           kubectl: str = "kubectl", spec_path: str | None = None, dry_run: bool = False,
           timeout_s: float = 900.0, progress: Callable[[str], None] | None = None
           ) -> K8sAction:
    """Render ``deploy_dir``, apply it, and wait for every workload to be ready.

    Raises:
        SpecError: the spec has errors (nothing rendered or applied).
        RunnerError: kubectl could not be run.
    """
    say = progress or (lambda _m: None)
    out = Path(deploy_dir)
    render_k8s(spec, out, spec_path)
    ns = spec.k8s.namespace
    result = K8sAction("launch", ns, str(out), workloads=_workloads(spec))
    if dry_run:
        built = result.record(runner.run([kubectl, "kustomize", str(out)],
                                         timeout=APPLY_TIMEOUT_S))
        if built.failed:
            result.error = f"kubectl kustomize failed: {built.tail('stderr')}"
        result.objects = built.stdout
        for w in result.workloads:
            w.note = "dry run"
            w.wanted = w.ready = 1
        return result
    say(f"kubectl apply -k {out}")
    applied = result.record(runner.run([kubectl, "apply", "-k", str(out)],
                                       timeout=APPLY_TIMEOUT_S))
    if applied.failed:
        result.error = f"kubectl apply failed: {applied.tail('stderr')}"
        return result
    for w in result.workloads:
        say(f"waiting for {w.kind}/{w.name}")
        # kubectl gives up at its --timeout; the runner's deadline is a margin beyond it.
        waited = result.record(runner.run(_wait_argv(kubectl, ns, w, timeout_s),
                                          timeout=timeout_s + 30))
        w.wanted = 1
        w.ready = int(waited.ok)
        w.note = (waited.stdout.strip() or waited.stderr.strip()).splitlines()[-1:][0] if (
            waited.stdout.strip() or waited.stderr.strip()) else ""
    if not all(w.ok for w in result.workloads):
        result.error = "not ready: " + ", ".join(f"{w.kind}/{w.name}"
                                                 for w in result.workloads if not w.ok)
    return result


def _ready(obj: dict[str, Any]) -> tuple[int, int]:
    status = obj.get("status") or {}
    wanted = int((obj.get("spec") or {}).get("replicas", 1))
    return int(status.get("readyReplicas", 0)), wanted


def status(spec: ClusterSpec, runner: CommandRunner, *, kubectl: str = "kubectl"
           ) -> K8sAction:
    """Ready/wanted replicas of every workload of the deployment, as the cluster reports."""
    ns = spec.k8s.namespace
    result = K8sAction("status", ns, "", workloads=_workloads(spec))
    names = [f"{RESOURCES[w.kind]}/{w.name}" for w in result.workloads]
    got = result.record(runner.run([kubectl, "get", "-n", ns, "--ignore-not-found", "-o",
                                    "json", *names], timeout=APPLY_TIMEOUT_S))
    if got.failed:
        result.error = f"kubectl get failed: {got.tail('stderr')}"
        return result
    try:
        items = json.loads(got.stdout).get("items", []) if got.stdout.strip() else []
    except ValueError as exc:
        raise LaunchError("kubectl get -o json printed no JSON",
                          hint="check the kubectl version and context") from exc
    found = {(i.get("kind"), i.get("metadata", {}).get("name")): i for i in items}
    for w in result.workloads:
        obj = found.get((w.kind, w.name))
        if obj is None:
            w.note = "not found"
            continue
        w.ready, w.wanted = _ready(obj)
    return result



def stop(spec: ClusterSpec, runner: CommandRunner, *, kubectl: str = "kubectl",
         timeout_s: float = 300.0) -> K8sAction:
    """Delete every object render writes, except the Namespace."""
    ns = spec.k8s.namespace
    result = K8sAction("stop", ns, "")
    gone = result.record(runner.run(
        [kubectl, "delete", "-n", ns, "--ignore-not-found", "--wait",
         f"--timeout={int(timeout_s)}s", *_targets(spec)], timeout=timeout_s + 30))
    if gone.failed:
        result.error = f"kubectl delete failed: {gone.tail('stderr')}"
    return result
