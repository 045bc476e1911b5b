"""The in-cluster preflight: one Job per node of the deployment, pinned by node name.

Each Job runs ``ascend-pd doctor`` for its own node with the local backend, the node's
``/etc/hccn.conf``, driver tools and ``npu-smi`` mounted, and prints the JSON envelope to
its log. ``kubectl apply -k deploy/preflight`` starts them; the saved logs are read back
by :func:`read_reports` (``ascend-pd doctor --from-k8s-logs DIR``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import yaml

from ascend_pd.doctor.checks import CheckResult
from ascend_pd.doctor.report import DoctorReport, HostDoctor
from ascend_pd.errors import UsageError
from ascend_pd.findings import Finding
from ascend_pd.k8s import objects as ob
from ascend_pd.k8s.pods import object_name
from ascend_pd.render.deploy import RenderedFile
from ascend_pd.spec.models import ClusterSpec

SPEC_DIR: Final[str] = "/etc/ascend-pd"
SPEC_FILE: Final[str] = "pd.yaml"


def job_name(host: str) -> str:
    return f"preflight-{object_name(host)}"[:63].rstrip("-")


def node_pod_spec(spec: ClusterSpec, host: str, name: str, command: list[str]) -> ob.Obj:
    """A pod spec pinned to node ``host`` with its hccn.conf, driver tools and npu-smi
    mounted read-only, running ``command`` in the tool image (the preflight Job's pod, and
    the pod ``check-links --target k8s`` runs hccn_tool in)."""
    k8s = spec.k8s

    def host_path(path: str, kind: str) -> ob.Obj:
        return {"hostPath": {"path": path, "type": kind}}

    vols = [("spec", SPEC_DIR, {"configMap": {"name": "ascend-pd-spec"}}),
            ("hccn-conf", "/etc/hccn.conf", host_path(k8s.hccn_conf, "File")),
            ("driver", k8s.driver_dir, host_path(k8s.driver_dir, "Directory")),
            ("npu-smi", "/usr/local/bin/npu-smi", host_path(k8s.npu_smi, "File"))]
    if command[:1] != ["ascend-pd"]:
        vols = vols[1:]  # only ascend-pd reads the spec
    container = {
        "name": name, "image": k8s.tool_image, "imagePullPolicy": k8s.image_pull_policy,
        "command": command,
        "volumeMounts": [{"name": n, "mountPath": p, "readOnly": True} for n, p, _ in vols],
    }
    pod: ob.Obj = {"restartPolicy": "Never", "nodeName": host,
                   "containers": [container],
                   "volumes": [{"name": n, **src} for n, _, src in vols]}
    if k8s.host_network is not False:
        # The checks read the node's own interfaces and addresses.
        pod["hostNetwork"] = True
        pod["dnsPolicy"] = "ClusterFirstWithHostNet"
    return pod


def preflight_job(spec: ClusterSpec, host: str) -> ob.Obj:
    k8s = spec.k8s
    labels = {**ob.common_labels(spec, k8s), "ascend-pd.io/role": "preflight"}
    pod = node_pod_spec(spec, host, "preflight",
                        ["ascend-pd", "doctor", "--json", "--backend", "local",
                         "-c", f"{SPEC_DIR}/{SPEC_FILE}", "--host", host])
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(host), "namespace": k8s.namespace,
                         "labels": labels},
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 86400,
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


def preflight_files(spec: ClusterSpec, header: str) -> list[RenderedFile]:
    """``preflight/``: the Jobs, the spec they read, and their kustomization."""
    hosts = sorted({h for _, inst in spec.instances for h in inst.hosts})
    jobs = [preflight_job(spec, h) for h in hosts]
    body: dict[str, Any] = spec.model_dump(mode="json", exclude_defaults=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": spec.k8s.namespace, "resources": ["jobs.yaml"],
        "generatorOptions": {"disableNameSuffixHash": True},
        "configMapGenerator": [{"name": "ascend-pd-spec", "files": [SPEC_FILE]}]}
    return [
        RenderedFile("preflight/jobs.yaml", header + ob.dump_yaml(jobs), 0o644),
        RenderedFile(f"preflight/{SPEC_FILE}",
                     header + yaml.safe_dump(body, sort_keys=False), 0o644),
        RenderedFile("preflight/kustomization.yaml",
                     header + ob.dump_yaml([kustomization]), 0o644),
    ]


def _host_findings(host: dict[str, Any]) -> list[Finding]:
    """One host's findings: ``ascend-pd/doctor/v1`` lists ``findings``; a Job image with an
    ascend-pd from before the one finding type printed ``checks`` (host, check, status,
    observed, expected, fix), read through the constructor kept for one release."""
    if "findings" in host:
        return [Finding.from_dict(f) for f in host["findings"]]
    return [CheckResult(**c) for c in host.get("checks", [])]


def read_reports(directory: str | Path) -> DoctorReport:
    """The preflight Jobs' logs (``kubectl logs job/preflight-<node> > DIR/<node>.json``)
    as one doctor report. A log without a report is that node's error, not an exception."""
    report = DoctorReport()
    files = sorted(p for p in Path(directory).iterdir() if p.is_file())
    if not files:
        raise UsageError(f"no preflight logs in {directory}",
                         hint="save them first: kubectl logs -n <ns> job/preflight-<node> "
                              "> DIR/<node>.json (docs/kubernetes.md)")
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        start = text.find("{")
        try:
            envelope = json.loads(text[start:]) if start >= 0 else None
            hosts = envelope["data"]["hosts"] if envelope else None
        except (ValueError, KeyError, TypeError):
            hosts = None
        if not isinstance(hosts, list):
            report.hosts.append(HostDoctor(path.stem, error=f"{path.name} holds no doctor JSON "
                                           "report (did the Job finish? see kubectl logs)"))
            continue
        for host in hosts:
            report.hosts.append(HostDoctor(
                str(host["host"]), error=host.get("error"), checks=_host_findings(host)))
    return report
