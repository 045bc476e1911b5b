"""Run commands on a remote host over SSH (paramiko), one connection per host.

One :class:`paramiko.Transport` per runner is opened on first use and shared by every
thread: each command gets its own channel. Host keys are checked against a known_hosts
file (never auto-accepted); ``accept-new`` records a first-seen key, loudly, and still
refuses a changed one. Every paramiko / socket failure is translated into a typed
:mod:`ascend_pd.errors` error in one place, :func:`_map_ssh_errors`.

The user's ``~/.ssh/config`` is deliberately not read: the spec is the single source of
how a host is reached, so runs are reproducible across operator accounts.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import paramiko

from ascend_pd.errors import (
    AscendPDError,
    CommandTimeoutError,
    HostKeyError,
    HostUnreachableError,
    RunnerError,
    SSHAuthError,
)
from ascend_pd.runners.base import DEFAULT_TIMEOUT_S, CommandResult, CommandRunner
from ascend_pd.runners.known_hosts import (
    HostKeyPolicy,
    KnownHosts,
    fingerprint,
)
from ascend_pd.runners.ssh_command import remote_command
from ascend_pd.runners.ssh_keys import load_identities

log = logging.getLogger(__name__)

#: OpenSSH allows 10 concurrent sessions per connection (MaxSessions); stay below it so a
#: busy fan-out queues locally instead of getting "administratively prohibited".
DEFAULT_MAX_SESSIONS = 8

class SSHRunner(CommandRunner):
    """Runs commands on ``address`` over one shared SSH connection.

    Args:
        host: the spec host name reported in results and errors.
        address: IP or DNS name to connect to.
        user: remote user.
        port: sshd port.
        key_filename: private key file; when None, ~/.ssh/id_{ed25519,ecdsa,rsa} are tried.
        known_hosts: OpenSSH known_hosts file (``~`` is expanded).
        host_key_policy: ``strict`` refuses unknown hosts; ``accept-new`` records them.
        connect_timeout: seconds for each of TCP connect, banner/key exchange and auth.
        use_agent: also offer the keys of a running ssh-agent (``SSH_AUTH_SOCK``).
        env: variables added to every command (per-call ``env`` wins).
        max_sessions: commands in flight at once on the connection.
    """

    def __init__(
        self,
        host: str,
        *,
        address: str,
        user: str = "root",
        port: int = 22,
        key_filename: str | None = None,
        known_hosts: str = "~/.ssh/known_hosts",
        host_key_policy: HostKeyPolicy = "strict",
        connect_timeout: float = 10.0,
        use_agent: bool = True,
        env: Mapping[str, str] | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        super().__init__(host)
        if host_key_policy not in ("strict", "accept-new"):
            raise RunnerError(
                f"{host}: unknown host_key_policy {host_key_policy!r}",
                host=host, hint="use 'strict' or 'accept-new'",
            )
        self.address = address
        self.user = user
        self.port = port
        self.key_filename = key_filename
        self._known_hosts = KnownHosts(known_hosts, host_key_policy)
        self.known_hosts = self._known_hosts.path
        self.host_key_policy = host_key_policy
        self.connect_timeout = connect_timeout
        self.use_agent = use_agent
        self._env = dict(env or {})
        self._lock = threading.Lock()
        self._sessions = threading.BoundedSemaphore(max_sessions)
        self._transport: paramiko.Transport | None = None
        #: how many SSH connections this runner has opened (1 while the link stays up)
        self.connections_opened = 0
        #: fingerprint recorded under accept-new, if this runner added one
        self.recorded_host_key: str | None = None

    # -- errors ---------------------------------------------------------------------------

    @property
    def _ssh_cmd(self) -> str:
        return f"ssh -p {self.port} {self.user}@{self.address}"

    @contextlib.contextmanager
    def _map_ssh_errors(self, stage: Literal["connect", "exec"]) -> Iterator[None]:
        """Translate paramiko and socket failures into typed errors naming this host."""
        where = f"{self.host} ({self.user}@{self.address}:{self.port})"
        reach = f"Check the host is up and sshd listens: `{self._ssh_cmd} true`"
        try:
            yield
        except RunnerError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"{where}: host key changed (server offers {fingerprint(exc.key)})",
                host=self.host, hint=f"Verify the host, then fix {self.known_hosts}",
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise SSHAuthError(
                f"{where}: authentication failed: {exc}",
                host=self.host,
                hint=f"Check the key is in ~{self.user}/.ssh/authorized_keys on the host: "
                f"`{self._ssh_cmd}{self._key_flag} true`",
            ) from exc
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            raise HostUnreachableError(
                f"{where}: cannot connect: {exc}", host=self.host, hint=reach
            ) from exc
        except TimeoutError as exc:  # socket.timeout is an alias since 3.10
            raise HostUnreachableError(
                f"{where}: no answer within {self.connect_timeout:g} s",
                host=self.host, hint=reach + "; or raise ssh.connect_timeout_s",
            ) from exc
        except ConnectionRefusedError as exc:
            raise HostUnreachableError(
                f"{where}: connection refused (is sshd running on port {self.port}?)",
                host=self.host, hint=reach,
            ) from exc
        except socket.gaierror as exc:
            raise HostUnreachableError(
                f"{where}: cannot resolve {self.address}: {exc.strerror}",
                host=self.host, hint="Check hosts[].address (or hosts[].ssh.address) in the spec",
            ) from exc
        except paramiko.SSHException as exc:
            if stage == "exec":
                raise RunnerError(
                    f"{where}: SSH session failed: {exc}", host=self.host, hint=reach
                ) from exc
            raise HostUnreachableError(
                f"{where}: SSH handshake failed: {exc}", host=self.host, hint=reach
            ) from exc
        except (OSError, EOFError) as exc:
            reason = "no route to host" if getattr(exc, "errno", None) in (
                errno.EHOSTUNREACH, errno.ENETUNREACH) else str(exc) or type(exc).__name__
            raise HostUnreachableError(
                f"{where}: {reason}", host=self.host, hint=reach
            ) from exc
        except AscendPDError:
            raise
        except Exception as exc:
            # paramiko raises more than its documented exceptions (ValueError from a key it
            # cannot parse, struct/ IndexError from a malformed packet): a host that makes it
            # fail is still one failing host, reported as data, never a traceback.
            log.debug("%s: unexpected SSH failure", self.host, exc_info=exc)
            raise RunnerError(
                f"{where}: SSH failed ({type(exc).__name__}: {exc})", host=self.host, hint=reach
            ) from exc

    @property
    def _key_flag(self) -> str:
        return f" -i {shlex.quote(self.key_filename)}" if self.key_filename else ""

    # -- connection -----------------------------------------------------------------------

    def _connected(self, deadline: float | None = None) -> paramiko.Transport:
        """The live transport, connecting (again) if there is none or it died.

        Another thread may be connecting (up to ``connect_timeout`` per stage): wait for it
        no longer than ``deadline``.
        """
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._lock.acquire(timeout=wait):
            raise CommandTimeoutError(
                f"{self.host}: still connecting to {self.user}@{self.address}:{self.port} "
                "when the command's time was up", host=self.host,
                hint=f"Check the host answers: `{self._ssh_cmd} true`")
        try:
            transport = self._transport
            if transport is not None and transport.is_active():
                return transport
            if transport is not None:
                log.info("%s: SSH connection lost; reconnecting", self.host)
                transport.close()
                self._transport = None
            self._transport = self._connect()
            self.connections_opened += 1
            return self._transport
        finally:
            self._lock.release()

    def _connect(self) -> paramiko.Transport:
        with self._map_ssh_errors("connect"):
            # Read known_hosts first: a file we cannot use fails before any connection.
            known = self._known_hosts.key_types(self.address, self.port)
            sock = socket.create_connection(
                (self.address, self.port), timeout=self.connect_timeout
            )
            transport = paramiko.Transport(sock)
            try:
                transport.banner_timeout = self.connect_timeout
                transport.handshake_timeout = self.connect_timeout
                transport.auth_timeout = self.connect_timeout
                if known:
                    # Ask for a key type we can verify, as OpenSSH does.
                    opts = transport.get_security_options()
                    first = [t for t in known if t in opts.key_types]
                    opts.key_types = first + [t for t in opts.key_types if t not in first]
                transport.start_client(timeout=self.connect_timeout)
                recorded = self._known_hosts.verify(
                    self.host, self.address, self.port, transport.get_remote_server_key())
                self.recorded_host_key = recorded or self.recorded_host_key
                self._authenticate(transport)
            except BaseException:
                transport.close()
                sock.close()  # Transport.close() leaves it open when start_client never ran
                raise
        log.debug("%s: connected to %s@%s:%d", self.host, self.user, self.address, self.port)
        return transport

    def _authenticate(self, transport: paramiko.Transport) -> None:
        identities = load_identities(self.host, self.key_filename)
        agent: paramiko.Agent | None = None
        if self.use_agent and os.environ.get("SSH_AUTH_SOCK"):
            with contextlib.suppress(paramiko.SSHException, OSError):
                agent = paramiko.Agent()
                identities.extend(agent.get_keys())
        try:
            self._try_identities(transport, identities)
        finally:
            if agent is not None:  # agent keys sign through this socket: close after auth
                agent.close()

    def _try_identities(
        self, transport: paramiko.Transport, identities: list[paramiko.PKey]
    ) -> None:
        if not identities:
            raise SSHAuthError(
                f"{self.host}: no SSH key to offer for {self.user}@{self.address}",
                host=self.host,
                hint="Set ssh.key in the spec, or start ssh-agent and `ssh-add` a key",
            )
        last: paramiko.AuthenticationException | None = None
        for pkey in identities:
            try:
                transport.auth_publickey(self.user, pkey)
            except paramiko.AuthenticationException as exc:
                last = exc
                continue
            if transport.is_authenticated():
                return
        raise SSHAuthError(
            f"{self.host}: {self.user}@{self.address} rejected all {len(identities)} key(s)"
            + (f": {last}" if last else ""),
            host=self.host,
            hint=f"Check the key is in ~{self.user}/.ssh/authorized_keys on the host: "
            f"`{self._ssh_cmd}{self._key_flag} true`",
        )

    def close(self) -> None:
        """Close the connection; the next command opens a new one."""
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    # -- commands -------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` remotely; see :meth:`CommandRunner.run`.

        The whole exec (waiting for a session slot, opening the channel, the exec request,
        stdin and the output) is held to ``timeout``: a watchdog closes the channel at the
        deadline, which also ends a wait for a server that never answers the exec request
        (paramiko's exec_command has no timeout of its own).

        On timeout CommandTimeoutError is raised. sshd ignores signal requests for root
        sessions, so the command runs under the host's timeout(1) with a limit 2 s after ours
        (TERM, then KILL 5 s later): a hung command does not run on holding one of sshd's
        MaxSessions. Processes that detach into their own session (``setsid``, as ``launch``
        does) are not affected.
        """
        limit = math.ceil(timeout) + 2
        command = remote_command(argv, {**self._env, **(env or {})}, limit_s=limit)
        start = time.monotonic()
        deadline = start + timeout
        if not self._sessions.acquire(timeout=timeout):
            raise self._timeout_error(argv, timeout)
        try:
            channel = self._open_channel(deadline, argv, timeout)
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                channel.close()

            watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
            watchdog.daemon = True
            watchdog.start()
            try:
                with self._map_ssh_errors("exec"):
                    try:
                        channel.exec_command(command.line)
                        channel.settimeout(max(0.1, deadline - time.monotonic()))
                        channel.sendall(command.preamble + (stdin or b""))
                        _send_eof(channel)
                        exit_code, out, err = self._collect(channel, deadline)
                    except (paramiko.SSHException, OSError):
                        if expired.is_set():
                            raise self._timeout_error(argv, timeout) from None
                        raise
                    finally:
                        channel.close()
            finally:
                watchdog.cancel()
            if exit_code is None or (expired.is_set() and exit_code == -1):
                raise self._timeout_error(argv, timeout)
            if exit_code == -1 and not channel.get_transport().is_active():
                raise RunnerError(
                    f"{self.host}: SSH connection lost while `{shlex.join(argv)}` was running",
                    host=self.host,
                    hint=f"The command may or may not have completed; check `{self._ssh_cmd}`",
                )
        finally:
            self._sessions.release()
        return CommandResult(
            host=self.host,
            argv=tuple(argv),
            exit_code=exit_code,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
            duration_s=time.monotonic() - start,
        )

    def _open_channel(self, deadline: float, argv: Sequence[str],
                      timeout: float) -> paramiko.Channel:
        reconnected = False
        delay = 0.05
        while True:
            transport = self._connected(deadline)
            wait = max(0.1, min(self.connect_timeout, deadline - time.monotonic()))
            try:
                with self._map_ssh_errors("exec"):
                    try:
                        return transport.open_session(timeout=wait)
                    except paramiko.SSHException as exc:
                        # On a live connection this is sshd saying no (MaxSessions: a session
                        # freed a moment ago, or a timed-out command still running remotely
                        # holds one). paramiko may report it as a bare "Unable to open
                        # channel" when several threads fail at once. Wait for a free slot.
                        if not transport.is_active():
                            raise
                        if time.monotonic() >= deadline:  # the server never answered
                            raise self._timeout_error(argv, timeout) from exc
                        if time.monotonic() + delay >= deadline:
                            raise RunnerError(
                                f"{self.host}: sshd refused a new session: {exc}",
                                host=self.host,
                                hint="sshd's MaxSessions is reached (timed-out commands may "
                                "still be running on the host); retry later or raise it",
                            ) from exc
                        time.sleep(delay)
                        delay = min(delay * 2, 0.5)
                        continue
            except RunnerError:
                # A connection that died under us (sshd restarted, network blip) gets one
                # fresh attempt; a live one that refuses the channel is a real error.
                if not reconnected and not transport.is_active():
                    reconnected = True
                    continue
                raise

    @staticmethod
    def _collect(
        channel: paramiko.Channel, deadline: float
    ) -> tuple[int | None, bytes, bytes]:
        """Read both streams until EOF and exit status; None exit code means timed out."""
        out, err = bytearray(), bytearray()
        fd = channel.fileno()  # readable whenever stdout or stderr has data (or EOF)

        def drain() -> None:
            while channel.recv_ready():
                out.extend(channel.recv(65536))
            while channel.recv_stderr_ready():
                err.extend(channel.recv_stderr(65536))

        while True:
            drain()
            remaining = deadline - time.monotonic()
            if channel.eof_received or channel.closed:
                # The exit status follows the EOF; a close without one (the command was
                # killed by a signal) also sets the event and leaves exit_status at -1.
                finished = channel.status_event.wait(max(0.0, remaining))
                drain()  # data that arrived between the last drain and the EOF
                if finished:
                    # Wait (briefly) for sshd's own close: only then has it freed the
                    # session, so the next command will not hit MaxSessions.
                    with channel.out_buffer_cv:
                        channel.out_buffer_cv.wait_for(lambda: channel.closed, timeout=1.0)
                return (channel.exit_status if finished else None), bytes(out), bytes(err)
            if remaining <= 0:
                return None, bytes(out), bytes(err)
            select.select([fd], [], [], min(remaining, 1.0))

    def _timeout_error(self, argv: Sequence[str], timeout: float) -> CommandTimeoutError:
        return CommandTimeoutError(
            f"{self.host}: `{shlex.join(argv)}` did not finish within {timeout:g} s",
            host=self.host,
            hint="The host or device may be hung; check it, or raise --timeout.",
        )


def _send_eof(channel: paramiko.Channel) -> None:
    """``channel.shutdown_write()`` without its race.

    paramiko marks the EOF as sent under the channel's lock but sends it after releasing
    the lock. A command that exits in that gap (a fast one, on a loaded machine) lets the
    transport thread answer sshd's CLOSE first; the EOF then names a channel sshd has
    freed, and OpenSSH drops the whole connection ("ieof packet referred to nonexistent
    channel"): every other command in flight on the host failed with EOFError (seen in
    the rig). Sent under the lock, the EOF goes out before the CLOSE reply, which the
    transport thread builds under the same lock. During a re-key the send waits for the
    key exchange while holding the lock, at most paramiko's clear_to_send_timeout.
    """
    with channel.lock:
        if channel.closed or channel.eof_sent:
            return
        # paramiko's own private steps (v5.1.0 channel.py, Channel.shutdown), with the send
        # moved inside the lock
        message = channel._send_eof()  # type: ignore[attr-defined]  # private, see above
        transport = channel.get_transport()
        if message is not None and transport is not None:
            transport._send_user_message(message)  # type: ignore[attr-defined]
