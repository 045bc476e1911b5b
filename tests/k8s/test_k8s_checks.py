"""The Kubernetes validation rules, on edited example specs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from ascend_pd.errors import SpecError
from ascend_pd.k8s.checks import k8s_findings
from ascend_pd.k8s.render import render_k8s
from ascend_pd.printer import finding_line
from ascend_pd.render.plan import build_plan
from tests.render.conftest import edited, load, spec_text


def lines(spec: Any) -> list[str]:
    return [finding_line(f) for f in k8s_findings(build_plan(spec))]


def test_the_examples_are_clean() -> None:
    assert lines(load("a2-1p1d")) == []
    assert lines(load("a3-2p1d")) == []


def test_kv_port_in_the_reserved_range_warns_with_the_range() -> None:
    spec = edited("a3-2p1d", lambda d: d["connector"].update(kv_port_base=30000))
    found = lines(spec)
    assert any(line.startswith("warning: connector.kv_port_base") and "20000-35999" in line
               and "kv_port_base >= 36000" in line for line in found), found


def test_unknown_npu_resource_warns_and_statefulset_cannot_span_hosts() -> None:
    spec = edited("a3-2p1d", lambda d: d.update(k8s={"npu_resource": "huawei.com/Ascend91O",
                                                     "workload": "statefulset"}))
    found = lines(spec)
    assert any(line.startswith("warning: k8s.npu_resource") for line in found), found
    assert any(line.startswith("error: k8s.workload") and "'decode-0'" in line
               for line in found), found


def test_external_dp_is_refused_for_k8s() -> None:
    spec = edited("a3-2p1d", lambda d: d["decode"][0].update(dp_mode="external"))
    assert any(line.startswith("error: decode[0].dp_mode") for line in lines(spec))


def test_disabled_probes_warn() -> None:
    spec = edited("a2-1p1d", lambda d: d.update(k8s={"probes": {"enabled": False}}))
    assert any(line.startswith("warning: k8s.probes.enabled") for line in lines(spec))


def _small_prefills(d: dict[str, Any]) -> None:
    for inst in d["prefill"]:
        inst.update(devices=list(range(8)), tp=8, dp=1)


def test_host_network_port_clash_when_pods_can_share_a_node() -> None:
    def edit(d: dict[str, Any]) -> None:
        _small_prefills(d)
        d["k8s"] = {"host_network": True}

    found = lines(edited("a3-2p1d", edit))
    assert any(line.startswith("error: prefill[1].port") and "clashes" in line
               for line in found), found
    pinned = edited("a3-2p1d", lambda d: (edit(d), d["k8s"].update(pin_nodes=True)))
    assert not any("clashes" in line for line in lines(pinned))
    pod_network = edited("a3-2p1d", _small_prefills)
    assert not any("clashes" in line for line in lines(pod_network))


def test_render_refuses_k8s_errors(tmp_path: Any) -> None:
    spec = edited("a3-2p1d", lambda d: (_small_prefills(d), d.update(
        k8s={"host_network": True})))
    with pytest.raises(SpecError, match="clashes"):
        render_k8s(spec, tmp_path)
    assert not any(tmp_path.iterdir())


def test_validate_target_k8s_prints_the_rules(tmp_path: Any) -> None:
    path = tmp_path / "pd.yaml"
    path.write_text(spec_text("a2-1p1d") + "k8s:\n  probes: {enabled: false}\n")
    out = subprocess.run([sys.executable, "-m", "ascend_pd", "validate", "-c", str(path),
                          "--target", "k8s"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert "warning: k8s.probes.enabled" in out.stdout
    plain = subprocess.run([sys.executable, "-m", "ascend_pd", "validate", "-c", str(path)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert "k8s.probes" not in plain.stdout


def test_workload_leaderworkerset_renders_single_pod_instances_as_groups_of_one(
        tmp_path: Any) -> None:
    from .validators import kustomize, problems

    spec = edited("a2-1p1d", lambda d: d.update(k8s={"workload": "leaderworkerset"}))
    render_k8s(spec, tmp_path)
    objs = kustomize(tmp_path)
    lws = [o for o in objs if o["kind"] == "LeaderWorkerSet"]
    assert sorted(o["metadata"]["name"] for o in lws) == ["decode-0", "prefill-0"]
    assert not [o for o in objs if o["kind"] == "StatefulSet"]
    group = lws[0]["spec"]["leaderWorkerTemplate"]
    assert group["size"] == 1 and "leaderTemplate" not in group
    assert all(problems(o) == [] for o in objs)


def test_vllm_router_and_hybrid_dp_are_refused_for_k8s() -> None:
    """Both render for SSH hosts; the k8s objects would silently run something else."""
    router = edited("a2-1p1d", lambda d: d["proxy"].update(kind="vllm-router"))
    assert any(line.startswith("error: proxy.kind") for line in lines(router)), lines(router)
    hybrid = edited("a3-2p1d", lambda d: d["decode"][0].update(dp_mode="hybrid"))
    assert any(line.startswith("error: decode[0].dp_mode") and "hybrid" in line
               for line in lines(hybrid)), lines(hybrid)
