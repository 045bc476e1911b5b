"""`check-links --target k8s` and the KubectlExecRunner under it, against the kubectl stand-in
(tests/k8s/fake_kubectl.py): `exec` into a pod runs the command as the pod's node of a
simulated cluster, whose hccn_tool / npu-smi are the stand-ins. The real subprocess path is
used throughout (ascend-pd -> kubectl -> sh -> stand-in)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ascend_pd.errors import HostUnreachableError
from ascend_pd.k8s.links import links_pod
from ascend_pd.runners.kubectl_exec import KubectlExecRunner
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.sim.faults import apply_fault
from ascend_pd.sim.install import install_tools
from ascend_pd.spec import parse_spec
from tests.k8s.validators import problems
from tests.render.conftest import spec_text

ROOT = Path(__file__).resolve().parents[2]
HOSTS = [("node-p", "192.0.2.11"), ("node-d", "192.0.2.12")]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    fake = tmp_path / "kubectl"
    fake.write_text(f"#!{sys.executable}\n" + (Path(__file__).parent / "fake_kubectl.py")
                    .read_text())
    fake.chmod(0o755)
    sim = tmp_path / "sim-cluster.yaml"
    save_cluster(generate_cluster(HOSTS), sim)
    tools = install_tools(tmp_path / "node-tools")
    spec = tmp_path / "pd.yaml"
    spec.write_text(spec_text("a2-1p1d"))  # hosts node-p / node-d, default tool paths
    env = {"FAKE_KUBECTL_ROOT": str(ROOT), "FAKE_KUBECTL_LOG": str(tmp_path / "calls.jsonl"),
           "FAKE_KUBECTL_STATE": str(tmp_path / "cluster.json"),
           "FAKE_KUBECTL_SIM_CLUSTER": str(sim),
           "FAKE_KUBECTL_TOOLS": str(tools["hccn_tool"].parent),
           "ASCEND_PD_KUBECTL": str(fake)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("ASCEND_PD_SIM_CLUSTER", "ASCEND_PD_SIM_HOST", "ASCEND_PD_BACKEND"):
        monkeypatch.delenv(key, raising=False)
    return {"kubectl": str(fake), "spec": spec, "sim": sim, "log": tmp_path / "calls.jsonl",
            "state": tmp_path / "cluster.json"}


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def check_links(c: dict[str, Any], *args: str, **env: str) -> tuple[int, dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "ascend_pd", "check-links", "-c",
                          str(c["spec"]), "--target", "k8s", "--json", *args],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env}, check=False)
    return out.returncode, json.loads(out.stdout)


def test_check_links_in_the_cluster_finds_the_tls_fault_through_the_node_pods(
        cluster: dict[str, Any]) -> None:
    apply_fault(cluster["sim"], "node-d", "tls-on", device=3)
    code, env = check_links(cluster)
    assert code == 1, env
    data = env["data"]
    assert [(f["where"]["host"], f["where"].get("device"), f["check"])
            for f in data["findings"] if f["severity"] == "error"] == [("node-d", 3, "tls")]
    # The whole P x D matrix ran (8 x 8 each way), in the pods.
    assert data["pings"]["run"] == 128 and data["pings"]["failed"] == 0
    assert data["k8s"]["pods"] == {"node-p": "links-node-p", "node-d": "links-node-d"}
    made = calls(cluster["log"])
    assert made[0] == ["apply", "-n", "ascend-pd", "-f", "-"]
    assert made[1][:3] == ["wait", "-n", "ascend-pd"]
    assert made[1][-2:] == ["pod/links-node-p", "pod/links-node-d"]
    execs = [c for c in made if c[0] == "exec"]
    assert {c[4] for c in execs} == {"links-node-p", "links-node-d"}
    tls = ["/usr/local/Ascend/driver/tools/hccn_tool", "-i", "3", "-tls", "-g"]
    assert sorted(c[4] for c in execs if c[-5:] == tls) == ["links-node-d", "links-node-p"]
    # The pods are gone when the check ends.
    assert made[-1][:2] == ["delete", "-n"]
    assert "pod/links-node-d" in made[-1]
    assert json.loads(cluster["state"].read_text()) == {}


def test_the_pods_are_pinned_to_their_nodes_with_the_driver_tools_mounted(
        cluster: dict[str, Any]) -> None:
    spec = parse_spec(cluster["spec"].read_text(), "pd.yaml")
    pod = links_pod(spec, "node-d")
    assert pod["metadata"]["name"] == "links-node-d"
    assert pod["spec"]["nodeName"] == "node-d"
    # a check-links that was killed leaves nothing running for long
    assert pod["spec"]["activeDeadlineSeconds"] == 3600
    assert pod["spec"]["containers"][0]["command"] == ["sleep", "3600"]
    mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts == {"/etc/hccn.conf", "/usr/local/Ascend/driver", "/usr/local/bin/npu-smi"}
    assert problems(pod) == []  # strict Kubernetes schema


def test_a_node_whose_pod_does_not_run_is_unreachable_and_the_other_is_still_checked(
        cluster: dict[str, Any]) -> None:
    code, env = check_links(cluster, "--ping", "plane", FAKE_KUBECTL_DEAD_PODS="links-node-d")
    assert code == 1, env
    findings = env["data"]["findings"]
    reach = [f for f in findings if f["check"] == "reach"]
    assert [f["where"]["host"] for f in reach] == ["node-d"]
    assert "kubectl exec into pod ascend-pd/links-node-d failed" in reach[0]["message"]
    assert "container not found" in reach[0]["message"]
    assert not [f for f in findings
                if f["where"].get("host") == "node-p" and f["severity"] == "error"]


def test_fix_tls_runs_in_the_pods_too(cluster: dict[str, Any]) -> None:
    apply_fault(cluster["sim"], "node-d", "tls-on", device=3)
    # plane pings: the full matrix ran in the test above; twice more is only slower
    code, env = check_links(cluster, "--fix", "tls", "--yes", "--ping", "plane")
    assert code == 0, env
    assert env["data"]["fix"]["changed"] == [{"host": "node-d", "device": 3}]


def test_target_k8s_needs_a_spec(cluster: dict[str, Any]) -> None:
    out = subprocess.run([sys.executable, "-m", "ascend_pd", "check-links", "--target", "k8s",
                          "--ips", "10.0.0.1", "--prefill-device-cnt", "8",
                          "--decode-device-cnt", "8", "--json"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert "--target k8s needs -c pd.yaml" in json.loads(out.stdout)["errors"][0]["message"]


# -- the runner itself -------------------------------------------------------------------


def _pod(cluster: dict[str, Any], name: str, node: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "ns"},
           "spec": {"nodeName": node, "containers": [{"name": "links", "image": "x"}]}}
    cluster["state"].write_text(json.dumps({f"Pod/{name}": pod}))


def test_runner_returns_the_tools_own_output_and_exit_code(cluster: dict[str, Any]) -> None:
    _pod(cluster, "links-a", "node-p")
    runner = KubectlExecRunner("node-p", pod="links-a", namespace="ns",
                               kubectl=cluster["kubectl"])
    ok = runner.run(["/usr/local/Ascend/driver/tools/hccn_tool", "-i", "0", "-ip", "-g"])
    assert ok.exit_code == 0
    assert ok.host == "node-p"
    assert ok.argv == ("/usr/local/Ascend/driver/tools/hccn_tool", "-i", "0", "-ip", "-g")
    assert "ipaddr:29.10." in ok.stdout
    bad = runner.run(["sh", "-c", "echo oops >&2; exit 3"])
    # kubectl's own "command terminated with exit code 3" line is not the command's output
    assert (bad.exit_code, bad.stderr) == (3, "oops\n")


def test_runner_keeps_env_off_the_command_line_and_passes_stdin(
        cluster: dict[str, Any]) -> None:
    _pod(cluster, "links-a", "node-p")
    secret = "s3cret 'q' $(not run)"
    runner = KubectlExecRunner("node-p", pod="links-a", namespace="ns",
                               kubectl=cluster["kubectl"])
    done = runner.run(["sh", "-c", 'printf "%s|" "$TOKEN"; cat'], env={"TOKEN": secret},
                      stdin=b"input")
    assert done.stdout == f"{secret}|input"
    assert secret not in cluster["log"].read_text()


def test_runner_reports_a_missing_pod_as_an_unreachable_node(cluster: dict[str, Any]) -> None:
    runner = KubectlExecRunner("node-x", pod="links-x", namespace="ns",
                               kubectl=cluster["kubectl"])
    with pytest.raises(HostUnreachableError) as err:
        runner.run(["true"])
    assert 'pods "links-x" not found' in err.value.message
    assert "kubectl get pod -n ns links-x" in (err.value.hint or "")
