"""Fixtures of the real-vLLM tier: the cached environment (scripts/real-vllm-env), and one
prefill + decode pair (NixlConnector) plus a plain server for reference, shared by a module.

CI (CI=true) must run this tier: a missing environment fails there; elsewhere it skips with the
reason and the command that builds it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realvllm.servers import Proc, RealEnv, proxy_process, vllm_server

REPO = Path(__file__).resolve().parents[2]


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
    prefill: Proc
    decode: Proc
    plain: Proc
    proxy: Proc
    workdir: Path


def start_all(procs: list[Proc]) -> None:
    """Spawn all, then wait for each; on failure stop them all and re-raise."""
    for proc in procs:
        proc.spawn()
    try:
        with ThreadPoolExecutor(len(procs)) as pool:
            for fut in [pool.submit(proc.wait_ready) for proc in procs]:
                fut.result()
    except BaseException:
        for proc in procs:
            proc.stop()
        raise


@pytest.fixture(scope="module")
def pd(real_env: RealEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PDPair]:
    """A real prefill + decode (NixlConnector, kv_both), a plain server, and our proxy."""
    workdir = tmp_path_factory.mktemp("realvllm")
    prefill = vllm_server(real_env, "prefill", workdir, pd=True)
    decode = vllm_server(real_env, "decode", workdir, pd=True)
    plain = vllm_server(real_env, "plain", workdir, pd=False)
    start_all([prefill, decode, plain])
    proxy = proxy_process(prefill, decode, workdir)
    try:
        start_all([proxy])
        yield PDPair(prefill, decode, plain, proxy, workdir)
    finally:
        for proc in (proxy, prefill, decode, plain):
            proc.stop()
