"""`render --target k8s`: the kustomize directory builds offline, every object passes strict
schema validation (built-in kinds) or its CRD's schema, it matches the golden files, and it
comes from the same plan as the SSH scripts."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ascend_pd.errors import SpecError
from ascend_pd.k8s.render import check_k8s, render_k8s
from ascend_pd.render import render_deploy
from tests.render.conftest import GOLDEN, edited, lint_scripts, load

from .validators import kustomize, problems

SHAPES = ["a2-1p1d", "a3-2p1d"]
K8S_GOLDEN = GOLDEN.parent / "k8s"


def built(tmp_path: Path, name: str, edit: Any = None) -> list[dict[str, Any]]:
    spec = edited(name, edit) if edit else load(name)
    render_k8s(spec, tmp_path / name, f"{name}.yaml")
    return kustomize(tmp_path / name)


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_object_validates_strictly(shape: str, tmp_path: Path) -> None:
    objs = built(tmp_path, shape) + kustomize(tmp_path / shape / "preflight")
    assert {o["kind"] for o in objs} >= {"Namespace", "ConfigMap", "Service", "StatefulSet",
                                         "Deployment", "Job"}
    assert {o["metadata"]["name"]: problems(o) for o in objs} == {
        o["metadata"]["name"]: [] for o in objs}


def test_validators_reject_what_the_apiserver_would() -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
           "spec": {"serviceName": "x", "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"hostNetwrok": True,
                                          "containers": [{"name": "c", "image": "i"}]}}}}
    assert any("hostNetwrok" in p for p in problems(sts))
    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
           "metadata": {"name": "x"},
           "spec": {"replicas": 1, "leaderWorkerTemplate": {
               "size": 2, "sizee": 3,
               "workerTemplate": copy.deepcopy(sts["spec"]["template"])}}}
    lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"].pop("hostNetwrok")
    assert any("sizee" in p for p in problems(lws))
    unknown = {"apiVersion": "workload.serving.volcano.sh/v1alpha1", "kind": "ModelServing",
               "metadata": {"name": "x"}, "spec": {}}
    assert any("no schema" in p for p in problems(unknown))


def test_a3_decode_spans_pods_as_a_leader_worker_set(tmp_path: Path) -> None:
    objs = built(tmp_path, "a3-2p1d")
    lws = by_kind(objs, "LeaderWorkerSet")["decode-0"]["spec"]["leaderWorkerTemplate"]
    assert lws["size"] == 2
    leader = lws["leaderTemplate"]["spec"]["containers"][0]
    worker = lws["workerTemplate"]["spec"]["containers"][0]
    assert leader["command"][-1].endswith("/pod-0.sh")
    assert worker["command"][-1].endswith("/pod-$(LWS_WORKER_INDEX).sh")
    assert "startupProbe" in leader
    assert "startupProbe" not in worker  # a headless DP rank serves no HTTP
    assert leader["resources"]["requests"] == {"huawei.com/Ascend910": "16"}
    assert leader["resources"]["limits"] == leader["resources"]["requests"]
    scripts = by_kind(objs, "ConfigMap")["decode-0-launch"]["data"]
    assert '--data-parallel-address "${LWS_LEADER_ADDRESS}"' in scripts["pod-1.sh"]
    assert "--data-parallel-start-rank 4" in scripts["pod-1.sh"]
    assert "--headless" in scripts["pod-1.sh"]
    assert '--data-parallel-address "${POD_IP}"' in scripts["pod-0.sh"]
    # the decode Service lists leaders only
    svc = by_kind(objs, "Service")["decode-0-api"]["spec"]
    assert svc["clusterIP"] == "None"
    assert svc["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
    proxy = by_kind(objs, "Deployment")["a3-2p1d-proxy"]["spec"]["template"]["spec"]
    command = proxy["containers"][0]["command"]
    assert "--discover-decode" in command
    assert "decode-0-api.ascend-pd.svc:8200" in command
    assert "--prefill" not in command


def test_pod_network_defaults_and_host_files(tmp_path: Path) -> None:
    objs = built(tmp_path, "a3-2p1d")
    pod = by_kind(objs, "StatefulSet")["prefill-0"]["spec"]["template"]["spec"]
    assert "hostNetwork" not in pod  # Mooncake: the pod network
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    for name in ("POD_IP", "HCCL_IF_IP", "VLLM_HOST_IP"):
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["hccn-conf"]["hostPath"] == {"path": "/etc/hccn.conf", "type": "File"}
    assert vols["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["hccn-conf"]["readOnly"] is True
    data = by_kind(objs, "ConfigMap")["prefill-0-launch"]["data"]["pod-0.env"]
    assert "export HCCL_SOCKET_IFNAME=eth0" in data
    assert "export HCCL_IF_IP" not in data  # from the pod, never the planned host address


def test_llmdatadist_uses_host_network_and_pins_nodes(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["connector"] = {"type": "llmdatadist", "vllm_ascend_version": "0.11.0"}

    objs = built(tmp_path, "a2-1p1d", edit)
    pod = by_kind(objs, "StatefulSet")["prefill-0"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["node-p"]
    assert {v["name"] for v in pod["volumes"]} >= {"ranktable"}


def test_volcano_option_adds_a_podgroup_valid_against_its_crd(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["k8s"] = {"volcano": True, "volcano_queue": "npu", "npu_resource": "huawei.com/npu"}

    objs = built(tmp_path, "a3-2p1d", edit)
    groups = by_kind(objs, "PodGroup")
    assert groups["decode-0"]["spec"]["minMember"] == 2
    assert all(problems(g) == [] for g in groups.values())
    lws = by_kind(objs, "LeaderWorkerSet")["decode-0"]["spec"]["leaderWorkerTemplate"]
    assert lws["workerTemplate"]["spec"]["schedulerName"] == "volcano"
    assert problems(by_kind(objs, "LeaderWorkerSet")["decode-0"]) == []


@pytest.mark.parametrize("shape", SHAPES)
def test_render_matches_golden(shape: str, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    result = render_k8s(load(shape), out, f"{shape}.yaml")
    golden = K8S_GOLDEN / shape
    if os.environ.get("ASCEND_PD_UPDATE_GOLDEN") == "1":
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(out, golden)
    rendered = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert rendered == sorted(result.files)
    assert rendered == sorted(str(p.relative_to(golden)) for p in golden.rglob("*")
                              if p.is_file()), "regenerate: ASCEND_PD_UPDATE_GOLDEN=1 pytest tests/k8s"
    for name in rendered:
        assert (out / name).read_text() == (golden / name).read_text(), (
            f"{shape}/{name} differs; if intended: ASCEND_PD_UPDATE_GOLDEN=1 pytest tests/k8s")
    assert check_k8s(load(shape), out, f"{shape}.yaml").ok


@pytest.mark.parametrize("shape", SHAPES)
def test_launch_scripts_lint_clean(shape: str, tmp_path: Path) -> None:
    render_k8s(load(shape), tmp_path, f"{shape}.yaml")
    lint_scripts(sorted((tmp_path / "launch").rglob("*.sh"))
                 + sorted((tmp_path / "launch").rglob("*.env")))


EDITS = {
    "model path": (lambda d: d["model"].update(path="/models/Other-Model"), "/models/Other-Model"),
    "tp": (lambda d: [d[r][0].update(tp=4, dp=2) for r in ("prefill", "decode")],
           "--tensor-parallel-size 4"),
    "port": (lambda d: d["decode"][0].update(port=8299), "8299"),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_one_spec_value_changes_ssh_scripts_and_manifests_alike(what: str,
                                                                tmp_path: Path) -> None:
    edit, needle = EDITS[what]
    base, changed = load("a2-1p1d"), edited("a2-1p1d", edit)

    def texts(spec: Any, target: str) -> dict[str, str]:
        out = tmp_path / f"{target}-{id(spec)}"
        if target == "ssh":
            render_deploy(spec, out, "pd.yaml")
        else:
            render_k8s(spec, out, "pd.yaml")
        return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()
                and p.name != "manifest.json"}

    for target in ("ssh", "k8s"):
        before, after = texts(base, target), texts(changed, target)
        diff = [n for n in after if after[n] != before.get(n)]
        assert diff, f"{what}: the {target} output did not change"
        assert any(needle in after[n] and needle not in before.get(n, "") for n in diff), (
            f"{what}: no {target} file gained {needle!r}")


def test_sim_specs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="simulation"):
        render_k8s(load("a2-sim"), tmp_path)


@pytest.mark.parametrize("shape", SHAPES)
def test_init_then_render_then_kustomize(shape: str, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ascend_pd", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)

    assert cli("init", "--shape", shape, "-o", "pd.yaml").returncode == 0
    rendered = cli("render", "-c", "pd.yaml", "--target", "k8s", "-o", "deploy", "--json")
    assert rendered.returncode == 0, rendered.stderr
    data = json.loads(rendered.stdout)["data"]
    assert data["target"] == "k8s" and "kustomization.yaml" in data["files"]
    assert cli("render", "-c", "pd.yaml", "--target", "k8s", "-o", "deploy",
               "--check").returncode == 0
    (tmp_path / "deploy" / "proxy.yaml").write_text("tampered\n")
    stale = cli("render", "-c", "pd.yaml", "--target", "k8s", "-o", "deploy", "--check")
    assert stale.returncode == 1 and "changed: proxy.yaml" in stale.stdout
    assert cli("render", "-c", "pd.yaml", "--target", "k8s", "-o", "deploy").returncode == 0
    assert kustomize(tmp_path / "deploy")  # objects validated in the tests above
