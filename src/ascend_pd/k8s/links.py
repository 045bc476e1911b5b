"""``check-links --target k8s``: the P↔D check run from inside the cluster.

The per-node preflight Jobs can run doctor alone, because the ping matrix needs every
node's device IPs at once. So check-links keeps one pod per node running while it checks
(a bare Pod ``links-<node>`` pinned by ``nodeName``, with the node's hccn.conf, driver tools
and npu-smi mounted like the Jobs, doing nothing but ``sleep``), and the ordinary netcheck
code runs ``hccn_tool`` in them through :class:`KubectlExecRunner` — the same queries,
pings, findings and ``--fix tls`` as over SSH. Bare Pods rather than a DaemonSet: the
names are known in advance (no lookup of a controller's random suffix), only the
deployment's nodes get one, and nothing restarts them. ``activeDeadlineSeconds`` ends a
pod that a killed check-links left behind; normally :meth:`LinksPods.down` deletes them.

A spec host is a node name here, as for the preflight Jobs (``nodeName: <host>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from ascend_pd.errors import RunnerError
from ascend_pd.k8s import objects as ob
from ascend_pd.k8s.pods import object_name
from ascend_pd.k8s.preflight import node_pod_spec
from ascend_pd.runners.base import CommandResult, CommandRunner
from ascend_pd.runners.kubectl_exec import KubectlExecRunner
from ascend_pd.spec.models import ClusterSpec

ROLE: Final[str] = "preflight-links"
#: the pods' lifetime (``sleep`` and ``activeDeadlineSeconds``): longer than any check
LIFETIME_S: Final[int] = 3600
#: seconds to wait for the pods to be Ready (image pull included)
READY_TIMEOUT_S: Final[float] = 300.0
#: seconds for one apply / delete call
CALL_TIMEOUT_S: Final[float] = 120.0


def pod_name(host: str) -> str:
    return f"links-{object_name(host)}"[:63].rstrip("-")


def links_pod(spec: ClusterSpec, host: str) -> ob.Obj:
    """The pod ``check-links --target k8s`` runs node ``host``'s hccn_tool in."""
    k8s = spec.k8s
    pod = node_pod_spec(spec, host, "links", ["sleep", str(LIFETIME_S)])
    pod["activeDeadlineSeconds"] = LIFETIME_S
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(host), "namespace": k8s.namespace,
                         "labels": {**ob.common_labels(spec, k8s), "ascend-pd.io/role": ROLE}},
            "spec": pod}


@dataclass
class LinksPods:
    """The per-node pods of one check: apply, wait until Ready, exec into, delete.

    kubectl runs through ``runner`` (a local runner: the seam), every call with a timeout
    and recorded in ``calls`` (argv, exit code, stderr tail) for the report.
    """

    spec: ClusterSpec
    hosts: list[str]
    runner: CommandRunner
    kubectl: str = "kubectl"
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: nodes whose pod was not Ready in time (kubectl's words); their checks fail as
    #: unreachable, the other nodes are still checked
    not_ready: str | None = None

    @property
    def namespace(self) -> str:
        return self.spec.k8s.namespace

    def _call(self, argv: list[str], *, timeout: float, stdin: bytes | None = None
              ) -> CommandResult:
        result = self.runner.run([self.kubectl, *argv], timeout=timeout, stdin=stdin)
        self.calls.append({"argv": list(result.argv), "exit_code": result.exit_code,
                           "duration_s": round(result.duration_s, 3),
                           "stderr": result.tail("stderr")})
        return result

    def manifest(self) -> str:
        return ob.dump_yaml([links_pod(self.spec, h) for h in self.hosts])

    def up(self, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        """Create the pods and wait (bounded) until they are Ready.

        Raises:
            RunnerError: kubectl could not create them (nothing can be checked).
        """
        applied = self._call(["apply", "-n", self.namespace, "-f", "-"],
                             timeout=CALL_TIMEOUT_S, stdin=self.manifest().encode())
        if applied.failed:
            raise RunnerError(
                f"kubectl apply of the check-links pods failed: {applied.tail('stderr', 3)}",
                hint=f"check the kubectl context and that namespace {self.namespace} exists "
                     "(kubectl apply -k <deploy>/ creates it)")
        waited = self._call(
            ["wait", "-n", self.namespace, "--for=condition=Ready",
             f"--timeout={int(ready_timeout_s)}s", *(f"pod/{pod_name(h)}" for h in self.hosts)],
            timeout=ready_timeout_s + 30)
        if waited.failed:
            self.not_ready = waited.tail("stderr", 3) or f"kubectl wait exit {waited.exit_code}"

    def runner_for(self, host: str) -> CommandRunner:
        return KubectlExecRunner(host, pod=pod_name(host), namespace=self.namespace,
                                 kubectl=self.kubectl)

    def down(self) -> None:
        """Delete the pods (not waiting for them to go: nothing depends on it). Runs when
        the command ends, also after an error: a failure here is recorded, never raised
        over the error that ended the command (``activeDeadlineSeconds`` ends them)."""
        try:
            self._call(["delete", "-n", self.namespace, "--ignore-not-found", "--wait=false",
                        *(f"pod/{pod_name(h)}" for h in self.hosts)], timeout=CALL_TIMEOUT_S)
        except RunnerError as exc:
            self.calls.append({"argv": [self.kubectl, "delete"], "error": exc.message})

    def to_dict(self) -> dict[str, Any]:
        return {"target": "k8s", "namespace": self.namespace,
                "pods": {h: pod_name(h) for h in self.hosts}, "not_ready": self.not_ready,
                "calls": self.calls}
