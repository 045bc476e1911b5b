"""Preflight warnings for the 2026 field failures, computed from the deployment plan."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ascend_pd.render import build_plan
from ascend_pd.render.preflight import (
    check_container_mounts,
    check_mooncake_a2_env,
    check_mooncake_connect_timeout,
    check_mooncake_library_path,
    preflight,
)
from ascend_pd.spec import ClusterSpec

from .conftest import edited, load

GOOD_ENV = {"LD_LIBRARY_PATH": "/usr/local/Ascend/ascend-toolkit/latest/lib64:/usr/local/lib",
            "ASCEND_CONNECT_TIMEOUT": "60000", "ASCEND_TRANSFER_TIMEOUT": "10000"}


def _with_env(env: dict[str, str], name: str = "a3-2p1d") -> ClusterSpec:
    def edit(data: dict[str, Any]) -> None:
        for role in ("prefill", "decode"):
            for inst in data[role]:
                inst["env"] = dict(env)
    return edited(name, edit)


def _keys(found: list[Any]) -> list[str]:
    return [f.key for f in found]


def test_an_ld_library_path_left_to_the_host_is_not_warned() -> None:
    spec = _with_env({k: v for k, v in GOOD_ENV.items() if k != "LD_LIBRARY_PATH"})
    assert check_mooncake_library_path(spec, build_plan(spec)) == []


def test_mooncake_without_the_library_dir_is_warned_per_instance() -> None:
    spec = _with_env({**GOOD_ENV, "LD_LIBRARY_PATH": "/usr/local/Ascend/driver/lib64"})
    found = check_mooncake_library_path(spec, build_plan(spec))
    assert _keys(found) == ["prefill[0].env", "prefill[1].env", "decode[0].env"]
    assert all(f.severity == "warning" and "ascend_transport.so" in f.message for f in found)
    assert "/usr/local/lib" in found[0].fix


def test_mooncake_without_connect_timeout_is_warned_with_the_values_to_set() -> None:
    spec = _with_env({k: v for k, v in GOOD_ENV.items() if k != "ASCEND_CONNECT_TIMEOUT"})
    found = check_mooncake_connect_timeout(spec, build_plan(spec))
    assert _keys(found) == ["prefill[0].env", "prefill[1].env", "decode[0].env"]
    assert "ASCEND_CONNECT_TIMEOUT: '60000'" in found[0].fix


def test_a_complete_mooncake_env_passes_every_preflight() -> None:
    spec = _with_env(GOOD_ENV)
    assert preflight(spec, build_plan(spec)) == []


def test_a2_mooncake_needs_the_buffer_pool_and_intra_roce() -> None:
    spec = _with_env(GOOD_ENV, name="a2-1p1d")
    (first, *_rest) = check_mooncake_a2_env(spec, build_plan(spec))
    assert "ASCEND_BUFFER_POOL=0:0" in first.message
    assert "HCCL_INTRA_ROCE_ENABLE=1" in first.message
    fixed = _with_env({**GOOD_ENV, "ASCEND_BUFFER_POOL": "0:0", "HCCL_INTRA_ROCE_ENABLE": "1"},
                      name="a2-1p1d")
    assert check_mooncake_a2_env(fixed, build_plan(fixed)) == []


def test_llmdatadist_and_simulated_plans_have_no_mooncake_warnings() -> None:
    for name in ("a2-1p1d-legacy-llmdatadist", "a2-sim"):
        spec = load(name)
        assert preflight(spec, build_plan(spec)) == []


def _docker_spec() -> ClusterSpec:
    def edit(data: dict[str, Any]) -> None:
        for host in data["hosts"]:
            host["runtime"] = "docker"
            host["docker"] = {"image": "quay.io/ascend/vllm-ascend:v0.11.0"}
    return edited("a2-1p1d", edit)


def test_containers_mount_hccn_conf_and_hccn_tool() -> None:
    spec = _docker_spec()
    plan = build_plan(spec)
    assert all(p.docker_argv for p in plan.processes)
    assert check_container_mounts(spec, plan) == []
    # A plan whose container lacks the mounts (an older renderer, a hand edit) is refused.
    argv = plan.processes[0].docker_argv or []
    stripped = [a for k, a in enumerate(argv)
                if not ("hccn" in a or (a == "-v" and "hccn" in argv[k + 1]))]
    plan.processes[0] = dataclasses.replace(plan.processes[0], docker_argv=stripped)
    (finding,) = check_container_mounts(spec, plan)
    assert finding.severity == "error"
    assert finding.key == "hosts[0].docker"
    assert "/etc/hccn.conf and hccn_tool" in finding.message


def test_the_container_mounts_the_hccn_tool_of_hccn_tool_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Like every command, the docker mount follows spec > $HCCN_TOOL_PATH > default.
    monkeypatch.setenv("HCCN_TOOL_PATH", "/opt/ascend/tools/hccn_tool")
    argv = build_plan(_docker_spec()).processes[0].docker_argv or []
    assert "/opt/ascend/tools/hccn_tool:/opt/ascend/tools/hccn_tool:ro" in argv
    assert not any(a.startswith("/usr/local/Ascend/driver/tools/hccn_tool:") for a in argv)
