"""SSHRunner against real sshd processes in network namespaces (the rig), plus its pure helpers.

Every failure case runs inside a fan_out next to a healthy host: the failing host must
fail within its own timeout while the healthy host still reports its results.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from ascend_pd.errors import (
    CommandTimeoutError,
    HostKeyError,
    HostUnreachableError,
    RunnerError,
    SSHAuthError,
)
from ascend_pd.resources import data_dir
from ascend_pd.runners import Job, Outcome, RunnerPool, fan_out
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.factory import make_runner
from ascend_pd.runners.known_hosts import fingerprint, known_hosts_name
from ascend_pd.runners.ssh import SSHRunner
from ascend_pd.runners.ssh_command import RemoteCommand, remote_command
from ascend_pd.spec import parse_spec
from tests.rig import Rig

# -- pure helpers (no rig) ----------------------------------------------------------------


def test_remote_command_quotes_every_word_and_keeps_env_values_off_the_line() -> None:
    cmd = remote_command(["printf", "%s", "a b", "$(id)"], {"K": "v w"})
    assert "v w" not in cmd.line and "K=" not in cmd.line
    assert shlex.split(cmd.line)[-4:] == ["printf", "%s", "a b", "$(id)"]
    assert cmd.preamble == b"export K='v w'\n"
    assert remote_command(["true"], {}).line == "true"


def _run_wrapper(cmd: RemoteCommand, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run the exec line locally through sh, as sshd would, feeding preamble + stdin."""
    return subprocess.run(["sh", "-c", cmd.line], input=cmd.preamble + stdin,
                          capture_output=True, check=False, timeout=20)


def test_remote_command_exports_env_from_stdin_and_leaves_the_rest_for_the_command() -> None:
    secret = "s3cret 'quoted' $(not run)\nsecond line"
    cmd = remote_command(["sh", "-c", 'printf "%s|" "$K"; cat'], {"K": secret}, limit_s=5)
    done = _run_wrapper(cmd, b"the command's own input")
    assert done.stdout.decode() == f"{secret}|the command's own input"


def test_remote_command_can_carry_a_host_side_limit() -> None:
    cmd = remote_command(["sleep", "9"], {"K": "v"}, limit_s=4)
    argv = shlex.split(cmd.line)
    assert argv[:2] == ["sh", "-c"] and argv[4:] == [str(len(cmd.preamble)), "4", "sleep", "9"]
    # The wrapper passes the command's own exit status through.
    done = _run_wrapper(remote_command(["sh", "-c", "exit 3"], {}, limit_s=4))
    assert done.returncode == 3


def _running(*argv: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().split(b"\0")[:-1] == [a.encode() for a in argv]:
                return True
        except OSError:
            pass
    return False


def test_remote_command_rejects_bad_env_names() -> None:
    with pytest.raises(RunnerError, match="invalid environment variable name"):
        remote_command(["true"], {"A;rm -rf /": "x"})


def test_known_hosts_name_uses_brackets_for_other_ports() -> None:
    assert known_hosts_name("10.0.0.1", 22) == "10.0.0.1"
    assert known_hosts_name("10.0.0.1", 2222) == "[10.0.0.1]:2222"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen (openssh-client)")
def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    import paramiko

    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    expected = subprocess.run(["ssh-keygen", "-lf", f"{key}.pub"], capture_output=True,
                              text=True, check=True).stdout.split()[1]
    assert fingerprint(paramiko.PKey.from_path(str(key))) == expected


# -- over the rig -------------------------------------------------------------------------


def ssh_runner(rig: Rig, name: str, **overrides: object) -> SSHRunner:
    """A runner for rig host ``name`` with the rig's key and known_hosts, strict policy."""
    host = rig.host(name)
    options: dict[str, object] = {
        "address": host.address, "user": "root", "port": host.port,
        "key_filename": str(rig.key_path), "known_hosts": str(rig.known_hosts),
        "host_key_policy": "strict", "connect_timeout": 3.0, "use_agent": False,
        **overrides,
    }
    return SSHRunner(name, **options)  # type: ignore[arg-type]


def fan_out_beside_healthy(
    rig: Rig, bad: CommandRunner, argv: tuple[str, ...] = ("rig-whoami",), timeout: float = 10.0
) -> tuple[list[Outcome], Outcome, float]:
    """Run a command on h1 (twice) and on ``bad`` in one fan_out; return h1's, bad's, seconds."""
    good = ssh_runner(rig, "h1")
    runners: dict[str, CommandRunner] = {"h1": good, bad.host: bad}
    jobs = [Job("h1", ("rig-whoami",)), Job(bad.host, argv, timeout=timeout),
            Job("h1", ("rig-whoami",))]
    start = time.monotonic()
    try:
        outcomes = fan_out(jobs, runners.__getitem__)
    finally:
        good.close()
        bad.close()
    elapsed = time.monotonic() - start
    healthy = [o for o in outcomes if o.job.host == "h1"]
    assert [o.result.stdout if o.result else o.error for o in healthy] == ["host=h1\n"] * 2
    return healthy, outcomes[1], elapsed


def accepted_logins(rig: Rig, name: str) -> int:
    return rig.sshd_log(name).count("Accepted publickey")


@pytest.mark.rig
class TestOverRig:
    def test_fan_out_runs_on_two_hosts_in_parallel(self, rig: Rig) -> None:
        with RunnerPool(lambda name: ssh_runner(rig, name)) as pool:
            jobs = [Job(h, ("sh", "-c", "sleep 1; rig-whoami"), key=(h, i))
                    for h in ("h1", "h2") for i in range(2)]
            start = time.monotonic()
            outcomes = fan_out(jobs, pool.get, per_host=2)
            elapsed = time.monotonic() - start
        assert [(o.job.key, o.result.stdout if o.result else o.error) for o in outcomes] == [
            (("h1", 0), "host=h1\n"), (("h1", 1), "host=h1\n"),
            (("h2", 0), "host=h2\n"), (("h2", 1), "host=h2\n"),
        ]
        assert elapsed < 3.0, f"4 one-second commands took {elapsed:.1f} s: not run in parallel"

    def test_exit_code_stdout_and_stderr_come_back_separately(self, rig: Rig) -> None:
        with ssh_runner(rig, "h2") as runner:
            result = runner.run(["sh", "-c", "echo out; echo oops >&2; exit 7"])
            missing = runner.run(["no-such-tool-here", "-i", "0"])
        assert (result.host, result.exit_code, result.stdout, result.stderr) == (
            "h2", 7, "out\n", "oops\n")
        assert result.argv == ("sh", "-c", "echo out; echo oops >&2; exit 7")
        assert missing.exit_code == 127
        assert "no-such-tool-here" in missing.stderr

    def test_env_is_passed_and_per_call_env_wins(self, rig: Rig) -> None:
        with ssh_runner(rig, "h1", env={"APD_A": "runner", "APD_B": "kept"}) as runner:
            result = runner.run(["printenv", "APD_A", "APD_B", "APD_C", "ASCEND_PD_SIM_HOST"],
                                env={"APD_A": "call", "APD_C": "with space"})
        assert result.stdout.splitlines() == ["call", "kept", "with space", "h1"]

    def test_awkward_arguments_arrive_literally(self, rig: Rig, tmp_path: Path) -> None:
        sentinel = tmp_path / "pwned"
        args = ["two words", "it's", 'say "hi"', f"$(touch {sentinel})", f"`touch {sentinel}`",
                "a;b|c&d", "*", "~", "$HOME", "", "ünï"]
        with ssh_runner(rig, "h1") as runner:
            result = runner.run(["printf", r"[%s]\n", *args])
        assert result.stdout.splitlines() == [f"[{a}]" for a in args]
        assert not sentinel.exists()

    def test_undecodable_output_is_replaced_not_fatal(self, rig: Rig) -> None:
        with ssh_runner(rig, "h1") as runner:
            result = runner.run(["printf", r"ok\377\n"])
        assert result.stdout == "ok\ufffd\n"

    def test_large_output_on_both_streams_does_not_deadlock(self, rig: Rig) -> None:
        script = ("head -c 3000000 /dev/zero | tr '\\0' o; "
                  "head -c 3000000 /dev/zero | tr '\\0' e >&2")
        with ssh_runner(rig, "h1") as runner:
            result = runner.run(["sh", "-c", script], timeout=20)
        assert (len(result.stdout), len(result.stderr)) == (3_000_000, 3_000_000)

    def test_many_threads_share_one_connection(self, rig: Rig) -> None:
        before = accepted_logins(rig, "h3")
        results: list[str] = []
        with ssh_runner(rig, "h3") as runner:
            def work() -> None:
                for _ in range(3):
                    try:
                        results.append(runner.run(["rig-whoami"]).stdout)
                    except RunnerError as exc:
                        results.append(repr(exc))

            threads = [threading.Thread(target=work) for _ in range(12)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert runner.connections_opened == 1
        assert results == ["host=h3\n"] * 36
        assert accepted_logins(rig, "h3") == before + 1  # sshd agrees: one login

    def test_reconnects_once_after_the_connection_died(self, rig: Rig) -> None:
        with ssh_runner(rig, "h3") as runner:
            assert runner.run(["rig-whoami"]).ok
            rig.stop_sshd("h3")  # cuts the open connection too
            rig.start_sshd("h3")
            time.sleep(0.2)  # let the transport notice the dead socket
            assert runner.run(["rig-whoami"]).stdout == "host=h3\n"
            assert runner.connections_opened == 2

    def test_a_command_done_before_our_eof_leaves_the_connection_up(
            self, rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
        # A caller thread descheduled between paramiko marking the EOF sent and sending it
        # (a loaded machine): the command exits, the transport thread answers sshd's CLOSE,
        # and an EOF sent after that made sshd drop the connection ("ieof packet referred
        # to nonexistent channel"; a gen-ranktable run lost 13 of 16 devices to it).
        import paramiko

        send = paramiko.Transport._send_user_message

        def late_eof(transport: paramiko.Transport, message: paramiko.Message) -> None:
            if (message.asbytes()[:1] == bytes([paramiko.common.MSG_CHANNEL_EOF])
                    and threading.current_thread() is not transport):
                time.sleep(0.3)  # the gap, widened
            send(transport, message)

        monkeypatch.setattr(paramiko.Transport, "_send_user_message", late_eof)
        log_before = len(rig.sshd_log("h2"))
        with ssh_runner(rig, "h2") as runner:
            for _ in range(3):
                assert runner.run(["true"]).ok
            assert runner.connections_opened == 1
        assert "nonexistent channel" not in rig.sshd_log("h2")[log_before:]

    def test_command_timeout_closes_the_channel_and_keeps_the_connection(self, rig: Rig) -> None:
        slow = ssh_runner(rig, "h2")
        _, outcome, elapsed = fan_out_beside_healthy(rig, slow, ("sleep", "30"), timeout=1.0)
        assert isinstance(outcome.error, CommandTimeoutError)
        assert "did not finish within 1 s" in outcome.error.message
        assert elapsed < 3.0
        with ssh_runner(rig, "h2") as runner:
            with pytest.raises(CommandTimeoutError):
                runner.run(["sleep", "30"], timeout=0.5)
            assert runner.run(["rig-whoami"]).ok  # same connection still usable
            assert runner.connections_opened == 1

    def test_timed_out_command_is_ended_on_the_host_too(self, rig: Rig) -> None:
        # The rig's hosts share this machine's process table, so the test can look.
        marker = "37.125"
        with ssh_runner(rig, "h2") as runner:
            with pytest.raises(CommandTimeoutError):
                runner.run(["sleep", marker], timeout=0.5)
        deadline = time.monotonic() + 10
        while _running("sleep", marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running("sleep", marker)

    def test_stopped_sshd_is_refused_quickly(self, rig: Rig) -> None:
        host = rig.host("h3")
        with rig.sshd_stopped("h3"):
            _, outcome, elapsed = fan_out_beside_healthy(rig, ssh_runner(rig, "h3"))
        assert isinstance(outcome.error, HostUnreachableError)
        assert "connection refused" in outcome.error.message
        assert f"ssh -p {host.port} root@{host.address}" in (outcome.error.hint or "")
        assert elapsed < 3.0

    def test_address_without_host_times_out_within_connect_timeout(self, rig: Rig) -> None:
        ghost = SSHRunner("ghost", address=rig.unused_address, key_filename=str(rig.key_path),
                          known_hosts=str(rig.known_hosts), connect_timeout=1.0, use_agent=False)
        _, outcome, elapsed = fan_out_beside_healthy(rig, ghost)
        assert isinstance(outcome.error, HostUnreachableError)
        assert outcome.error.host == "ghost"
        assert elapsed < 2.5, f"connect_timeout 1 s, but the fan-out took {elapsed:.1f} s"

    def test_wrong_key_is_an_auth_error(self, rig: Rig) -> None:
        wrong = ssh_runner(rig, "h2", key_filename=str(rig.wrong_key_path))
        _, outcome, elapsed = fan_out_beside_healthy(rig, wrong)
        assert isinstance(outcome.error, SSHAuthError)
        assert f"-i {rig.wrong_key_path}" in (outcome.error.hint or "")
        assert elapsed < 5.0

    def test_unknown_host_is_refused_under_strict(self, rig: Rig, tmp_path: Path) -> None:
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        host = rig.host("h2")
        _, outcome, _ = fan_out_beside_healthy(rig, ssh_runner(rig, "h2", known_hosts=str(empty)))
        assert isinstance(outcome.error, HostKeyError)
        assert f"[{host.address}]:2222 is not in {empty}" in outcome.error.message
        assert f"ssh-keyscan -p 2222 {host.address} >> {empty}" in (outcome.error.hint or "")
        assert "accept-new" in (outcome.error.hint or "")
        assert empty.read_text() == ""

    def test_accept_new_records_the_key_loudly(
        self, rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        known = tmp_path / "ssh" / "known_hosts"  # neither file nor folder exists yet
        caplog.set_level(logging.WARNING, logger="ascend_pd.runners.ssh")
        with ssh_runner(rig, "h2", known_hosts=str(known), host_key_policy="accept-new") as r:
            assert r.run(["rig-whoami"]).ok
            assert r.recorded_host_key is not None
        assert known.read_text() == rig.host("h2").known_hosts_line()
        assert known.stat().st_mode & 0o777 == 0o600
        assert "new host" in caplog.text
        assert r.recorded_host_key in caplog.text
        with ssh_runner(rig, "h2", known_hosts=str(known)) as strict:  # now known under strict
            assert strict.run(["rig-whoami"]).ok

    def test_changed_host_key_is_refused_even_with_accept_new(self, rig: Rig) -> None:
        stale = rig.rotate_host_key("h3")
        for policy in ("strict", "accept-new"):
            before = stale.read_text()
            runner = ssh_runner(rig, "h3", known_hosts=str(stale), host_key_policy=policy)
            _, outcome, _ = fan_out_beside_healthy(rig, runner)
            assert isinstance(outcome.error, HostKeyError), policy
            assert "CHANGED" in outcome.error.message
            assert "ssh-keygen -R" in (outcome.error.hint or "")
            assert stale.read_text() == before  # never silently overwritten
        with ssh_runner(rig, "h3") as fresh:  # the rig's file has the new key
            assert fresh.run(["rig-whoami"]).ok

    def test_passphrase_key_is_refused_but_works_through_the_agent(
        self, rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest,
    ) -> None:
        locked = tmp_path / "locked_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(locked)],
                       check=True)
        authorized = rig.authorized_keys.read_text()
        rig.authorized_keys.write_text(authorized + Path(f"{locked}.pub").read_text())
        request.addfinalizer(lambda: rig.authorized_keys.write_text(authorized))
        with pytest.raises(SSHAuthError, match="protected by a passphrase") as info:
            ssh_runner(rig, "h1", key_filename=str(locked)).run(["true"])
        assert f"ssh-add {locked}" in (info.value.hint or "")

        sock = tmp_path / "agent.sock"
        agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 5
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            subprocess.run(["ssh-add", "-q", str(locked)], input="s3cret\n", text=True,
                           env={"SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS_REQUIRE": "never"},
                           check=False, capture_output=True, timeout=10)
            listed = subprocess.run(["ssh-add", "-l"], env={"SSH_AUTH_SOCK": str(sock)},
                                    capture_output=True, text=True, check=False, timeout=10)
            if "ED25519" not in listed.stdout:
                pytest.skip("ssh-add could not load a passphrase key without a terminal")
            monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
            monkeypatch.setenv("HOME", str(tmp_path))  # no default ~/.ssh/id_* keys
            with ssh_runner(rig, "h1", key_filename=None, use_agent=True) as runner:
                assert runner.run(["rig-whoami"]).stdout == "host=h1\n"
        finally:
            agent.terminate()
            agent.wait(timeout=5)

    def test_spec_hosts_reach_the_rig_through_the_factory(self, rig: Rig) -> None:
        spec = parse_spec(yaml.safe_dump(spec_for(rig)), "rig.yaml")
        for name in ("h1", "h2"):
            with make_runner(spec, name, "auto") as runner:
                assert isinstance(runner, SSHRunner)
                assert runner.run(["rig-whoami"]).stdout == f"host={name}\n"


def spec_for(rig: Rig) -> dict[str, object]:
    """The a2-1p1d example spec pointed at rig hosts h1 (prefill) and h2 (decode)."""
    example = data_dir("templates") / "specs" / "a2-1p1d.yaml"
    data: dict[str, object] = yaml.safe_load(example.read_text())
    data["ssh"] = rig.ssh_spec()
    data["hosts"] = rig.spec_hosts()[:2]
    for role, host in (("prefill", "h1"), ("decode", "h2")):
        instances = data[role]
        assert isinstance(instances, list)
        instances[0]["hosts"] = [host]
    data["proxy"] = {"host": "h1", "port": 8000}
    return data


