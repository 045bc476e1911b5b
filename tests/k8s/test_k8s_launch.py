"""`launch|status|stop --target k8s` through the CLI, with a recording `kubectl` stand-in
that validates what it is given (tests/k8s/fake_kubectl.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.render.conftest import spec_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kube(tmp_path: Path) -> dict[str, Any]:
    fake = tmp_path / "kubectl"
    fake.write_text(f"#!{sys.executable}\n" + (Path(__file__).parent / "fake_kubectl.py")
                    .read_text())
    fake.chmod(0o755)
    spec = tmp_path / "pd.yaml"
    spec.write_text(spec_text("a3-2p1d"))
    env = {**os.environ, "FAKE_KUBECTL_ROOT": str(ROOT),
           "FAKE_KUBECTL_LOG": str(tmp_path / "calls.jsonl"),
           "FAKE_KUBECTL_STATE": str(tmp_path / "cluster.json"),
           "ASCEND_PD_KUBECTL": str(fake)}
    return {"env": env, "spec": spec, "dir": tmp_path / "deploy", "log": tmp_path / "calls.jsonl"}


def run(kube: dict[str, Any], *args: str, **env: str) -> tuple[int, dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "ascend_pd", *args, "-c", str(kube["spec"]),
                          "--target", "k8s", "--json"], capture_output=True, text=True,
                         timeout=300, env={**kube["env"], **env}, check=False)
    return out.returncode, json.loads(out.stdout)


def calls(kube: dict[str, Any]) -> list[list[str]]:
    lines = kube["log"].read_text().splitlines() if kube["log"].exists() else []
    return [json.loads(line) for line in lines]


def test_launch_applies_waits_then_status_and_stop(kube: dict[str, Any]) -> None:
    code, env = run(kube, "launch", "--deploy-dir", str(kube["dir"]))
    assert code == 0, env
    assert env["data"]["ok"] is True
    made = calls(kube)
    assert made[0] == ["apply", "-k", str(kube["dir"])]
    waits = [c for c in made[1:]]
    assert ["wait", "-n", "ascend-pd", "--for=condition=Available",
            "leaderworkersets.leaderworkerset.x-k8s.io/decode-0", "--timeout=900s"] in waits
    assert ["rollout", "status", "-n", "ascend-pd", "statefulset/prefill-0",
            "--timeout=900s"] in waits
    assert ["rollout", "status", "-n", "ascend-pd", "deployment/a3-2p1d-proxy",
            "--timeout=900s"] in waits
    code, env = run(kube, "status")
    assert code == 0
    assert {w["name"]: w["ready"] for w in env["data"]["workloads"]} == {
        "prefill-0": 1, "prefill-1": 1, "decode-0": 1, "a3-2p1d-proxy": 1}
    code, env = run(kube, "stop")
    assert code == 0
    delete = calls(kube)[-1]
    assert delete[:2] == ["delete", "-n"]
    assert "configmap/decode-0-launch" in delete
    assert not any(a.startswith("namespace") for a in delete)  # the namespace is kept
    code, env = run(kube, "status")
    assert code == 1
    assert {w["note"] for w in env["data"]["workloads"]} == {"not found"}


def test_a_workload_that_does_not_become_ready_is_exit_7(kube: dict[str, Any]) -> None:
    code, env = run(kube, "launch", "--deploy-dir", str(kube["dir"]),
                    FAKE_KUBECTL_FAIL_WAIT="decode-0")
    assert code == 7
    assert env["exit_code"] == 7
    assert "LeaderWorkerSet/decode-0" in env["data"]["error"]
    assert "timed out" in json.dumps(env["data"]["workloads"])


def test_dry_run_prints_the_objects_and_applies_nothing(kube: dict[str, Any]) -> None:
    code, env = run(kube, "launch", "--deploy-dir", str(kube["dir"]), "--dry-run")
    assert code == 0
    assert [c[0] for c in calls(kube)] == ["kustomize"]
    assert '"kind": "LeaderWorkerSet"' in env["data"]["objects"]


def test_missing_kubectl_is_a_runner_error(kube: dict[str, Any], tmp_path: Path) -> None:
    code, env = run(kube, "status", ASCEND_PD_KUBECTL=str(tmp_path / "no-kubectl"))
    assert code == 3
    assert "command not found" in env["errors"][0]["message"]
