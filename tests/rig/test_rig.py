"""The rig itself: skip/fail policy, host-to-host reachability, teardown and stale cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ascend_pd.runners.ssh import SSHRunner
from tests.rig import Rig, cleanup_stale, unavailable_reason
from tests.rig.fixtures import rig_unavailable

REPO = Path(__file__).resolve().parents[2]


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                          check=False).stdout


def _links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                          check=False).stdout


def test_non_root_gets_the_exact_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert unavailable_reason() == "needs root to create network namespaces (running as uid 1000)"


def test_missing_capability_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        rig_unavailable("needs root to create network namespaces (running as uid 1000)")


def test_missing_capability_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true requires it: needs root"):
        rig_unavailable("needs root to create network namespaces (running as uid 1000)")


@pytest.mark.rig
def test_hosts_reach_each_other(rig: Rig) -> None:
    h2 = rig.host("h2")
    probe = f"import socket; socket.create_connection(({h2.address!r}, {h2.port}), 2).close()"
    h1 = rig.host("h1")
    with SSHRunner("h1", address=h1.address, port=h1.port, key_filename=str(rig.key_path),
                   known_hosts=str(rig.known_hosts), connect_timeout=3, use_agent=False) as r:
        result = r.run([sys.executable, "-c", probe])
    assert result.ok, result.stderr


@pytest.mark.rig
def test_close_removes_namespaces_bridge_and_sshd(rig: Rig, tmp_path: Path) -> None:
    with Rig(tmp_path, n_hosts=1) as small:
        ns, bridge = small.hosts[0].netns, small.bridge
        sshd = small.hosts[0].process
        assert ns in _netns()
    assert ns not in _netns()
    assert f" {bridge}:" not in _links()
    assert sshd is not None
    assert sshd.poll() is not None


@pytest.mark.rig
def test_leftovers_of_a_killed_run_are_cleaned(rig: Rig, tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from tests.rig import Rig; "
            "r = Rig(Path(sys.argv[1]), 1).start(); print(r.hosts[0].netns, r.bridge, "
            "flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        ns, bridge = proc.stdout.readline().split()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert ns in _netns()  # killed: no teardown ran
    removed = cleanup_stale()
    assert ns in removed
    assert bridge in removed
    assert ns not in _netns()
    assert rig.host("h1").netns in _netns()  # a live run's namespaces are left alone
