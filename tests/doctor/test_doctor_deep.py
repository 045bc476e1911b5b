"""doctor --deep on simulated hosts whose site-packages hold the REAL vllm-ascend and vLLM
source of a release (unpacked sdists from the package registry, cached outside the tree):
the plan's env, connector, additional_config and flags are checked against that code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.sdists import cached_trees, vllm_tree

from ascend_pd.doctor import DoctorReport, run_doctor
from ascend_pd.doctor.simroot import SimHost
from ascend_pd.runners.factory import runner_factory
from ascend_pd.runners.fanout import RunnerPool
from ascend_pd.spec import load_spec

SimFactory = Callable[..., tuple[SimHost, Path]]

# vllm-ascend release -> (the vLLM its matrix row pairs it with, the spec version the
# renderer on this branch accepts for it)
HOSTS = {"0.13.0": ("0.13.0", "0.13.0"), "0.23.0.post1": ("0.23.0", "0.23.0"),
         "0.30.0rc2": ("0.30.0", "0.30.0rc2")}


def deep_doctor(sim_spec: SimFactory, release: str, *, connector: str = "mooncake",
                decode: dict[str, Any] | None = None) -> dict[str, Any]:
    vllm, spec_version = HOSTS[release]
    sources = {"vllm_ascend": cached_trees((release,))[release], "vllm": vllm_tree(vllm)}
    _, path = sim_spec(release=release, sources=sources, connector=connector,
                       version=spec_version if connector == "mooncake" else "0.11.0")
    if decode:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["decode"][0].update(decode)
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    spec = load_spec(path)
    with RunnerPool(runner_factory(spec, "local")) as pool:
        report: DoctorReport = run_doctor(spec, pool.get, deep=True)
    return {c.check: c for c in report.checks if c.check.startswith("deep-")}


@pytest.mark.slow
@pytest.mark.parametrize("release", sorted(HOSTS))
def test_the_plan_s_flags_and_connector_exist_in_the_installed_code(
        sim_spec: SimFactory, release: str) -> None:
    checks = deep_doctor(sim_spec, release)
    assert checks["deep-installed"].severity == "pass"
    assert f"vllm_ascend {release}" in checks["deep-installed"].message
    assert checks["deep-connector"].severity == "pass"
    flags = checks["deep-serve-flags"]
    assert flags.severity == "pass", flags.message
    assert f"defined by vLLM {HOSTS[release][0]}" in flags.message


@pytest.mark.slow
def test_a_stale_torchair_key_is_an_error_where_additional_config_is_strict(
        sim_spec: SimFactory) -> None:
    # recompute_scheduler_enable at the top level is deprecated but still accepted in
    # 0.30.0rc2 (set aside before validation); torchair_graph_config is rejected.
    stale = {"additional_config": {"torchair_graph_config": {"enabled": True},
                                   "recompute_scheduler_enable": True}}
    strict = deep_doctor(sim_spec, "0.30.0rc2", decode=stale)["deep-additional-config"]
    assert strict.severity == "error"
    assert "'torchair_graph_config' is rejected" in strict.message
    assert "vllm_ascend/ascend_config.py:565" in strict.message
    assert "recompute_scheduler_enable" not in strict.message


@pytest.mark.slow
def test_a_stale_torchair_key_is_a_warning_where_it_is_ignored(sim_spec: SimFactory) -> None:
    stale = {"additional_config": {"torchair_graph_config": {"enabled": True}}}
    lenient = deep_doctor(sim_spec, "0.23.0.post1", decode=stale)["deep-additional-config"]
    assert lenient.severity == "warning"
    assert "silently ignored" in lenient.message


@pytest.mark.slow
def test_a_wrong_abort_timeout_name_is_caught(sim_spec: SimFactory) -> None:
    # 0.13.0's Mooncake connector reads vLLM's VLLM_NIXL_ABORT_REQUEST_TIMEOUT; the renamed
    # variable (0.18.0+) would be silently lost.
    planted = {"env": {"VLLM_MOONCAKE_ABORT_REQUEST_TIMEOUT": "600"}}
    env = deep_doctor(sim_spec, "0.13.0", decode=planted)["deep-env"]
    assert env.severity == "error"
    assert "VLLM_MOONCAKE_ABORT_REQUEST_TIMEOUT is set" in env.message
    assert "VLLM_NIXL_ABORT_REQUEST_TIMEOUT (vllm_ascend/distributed/mooncake_connector.py:162)" \
        in env.message


@pytest.mark.slow
def test_an_unknown_connector_is_caught(sim_spec: SimFactory) -> None:
    # A spec still on the old LLMDataDist default, on a host running the current stable release.
    connector = deep_doctor(sim_spec, "0.23.0.post1", connector="llmdatadist")["deep-connector"]
    assert connector.severity == "error"
    assert "LLMDataDistCMgrConnector is not registered by the installed vllm-ascend " \
        "0.23.0.post1" in connector.message
    assert "MooncakeHybridConnector" in connector.expected
