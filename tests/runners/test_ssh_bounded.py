"""The SSH runner holds every command to its timeout, whatever stage the server stalls in,
and every paramiko failure becomes a typed error (against a real SSH server on loopback)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.errors import CommandTimeoutError, HostKeyError
from ascend_pd.examples import example_spec
from ascend_pd.runners import Job, fan_out
from ascend_pd.runners.ssh import SSHRunner
from tests.runners.sshstall import StallingSSHServer


@pytest.fixture
def stalling(tmp_path: Path) -> Iterator[StallingSSHServer]:
    with StallingSSHServer(tmp_path) as server:
        yield server


def runner_to(server: StallingSSHServer, name: str = "stalled", **kw: object) -> SSHRunner:
    options: dict[str, object] = {
        "address": "127.0.0.1", "port": server.port, "key_filename": str(server.client_key),
        "known_hosts": str(server.known_hosts), "use_agent": False, "connect_timeout": 10.0,
    }
    options.update(kw)
    return SSHRunner(name, **options)  # type: ignore[arg-type]


def test_a_stalled_exec_request_is_held_to_the_command_timeout(
        stalling: StallingSSHServer) -> None:
    with runner_to(stalling) as runner:
        start = time.monotonic()
        with pytest.raises(CommandTimeoutError, match="did not finish within 3 s"):
            runner.run(["true"], timeout=3)
        elapsed = time.monotonic() - start
    # Before: paramiko's exec_command waited for the reply for ever (120 s in the field).
    assert elapsed < 20, f"run(timeout=3) took {elapsed:.1f} s"


def test_a_fan_out_over_stalled_hosts_ends_with_its_jobs_timeouts(
        stalling: StallingSSHServer, tmp_path: Path) -> None:
    runners = {f"s{i}": runner_to(stalling, f"s{i}") for i in range(2)}
    jobs = [Job(h, ("true",), key=(h, n), timeout=3) for h in runners for n in range(3)]
    start = time.monotonic()
    try:
        outcomes = fan_out(jobs, runners.__getitem__, per_host=3)
    finally:
        for runner in runners.values():
            runner.close()
    elapsed = time.monotonic() - start
    assert [type(o.error).__name__ for o in outcomes] == ["CommandTimeoutError"] * 6
    # Six 3 s jobs, three at once per host: ~3 s in all, not one stall after the other.
    assert elapsed < 20, f"the fan-out took {elapsed:.1f} s"


CERT_AUTHORITY = ("@cert-authority *.example.net ssh-ed25519 "
                  "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")


def test_a_cert_authority_line_is_a_host_key_error_naming_the_line(
        stalling: StallingSSHServer) -> None:
    stalling.known_hosts.write_text(stalling.known_hosts.read_text() + CERT_AUTHORITY)
    with runner_to(stalling) as runner, pytest.raises(HostKeyError) as info:
        runner.run(["true"], timeout=5)
    assert f"{stalling.known_hosts} line 2: @cert-authority entries are not supported" \
        in info.value.message
    assert "ssh-keyscan" in (info.value.hint or "")


def test_status_reports_a_bad_known_hosts_per_unit_without_a_traceback(
        stalling: StallingSSHServer, tmp_path: Path) -> None:
    stalling.known_hosts.write_text(CERT_AUTHORITY + stalling.known_hosts.read_text())
    spec = yaml.safe_load(example_spec("a2-1p1d"))
    spec["backend"] = "ssh"
    spec["ssh"] = {"port": stalling.port, "key": str(stalling.client_key), "use_agent": False,
                   "known_hosts": str(stalling.known_hosts)}
    for host in spec["hosts"]:  # the spec's addresses are documentation IPs: reach loopback
        host["ssh"] = {"address": "127.0.0.1"}
    spec["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "pd.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["status", "-c", str(path), "--json"])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [u["error"] or "" for u in json.loads(result.output)["data"]["units"]]
    assert errors
    assert ["line 1: @cert-authority" in e for e in errors] == [True] * len(errors), errors
