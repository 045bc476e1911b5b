"""A real SSH server on loopback (paramiko's server side) that completes the handshake and
authentication, then never answers an exec request: the shape of a host whose sshd or
login shell hangs (stuck NFS home, PAM module waiting on a dead LDAP server)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from types import TracebackType

import paramiko


class _Stall(paramiko.ServerInterface):
    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else \
            paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        # Runs on the server transport's thread: while it waits, the whole connection is
        # silent (no channel opens, no replies), as with a wedged sshd.
        self.release.wait(120)
        return False


class StallingSSHServer:
    """Listens on 127.0.0.1; ``known_hosts`` and ``client_key`` are files for SSHRunner."""

    def __init__(self, base: Path) -> None:
        self.host_key = paramiko.ECDSAKey.generate()
        client = paramiko.ECDSAKey.generate()
        self.client_key = base / "client_key"
        client.write_private_key_file(str(self.client_key))
        self._release = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.known_hosts = base / "known_hosts"
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n")
        self._transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._release.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        self._transports.append(transport)
        transport.add_server_key(self.host_key)
        try:
            transport.start_server(server=_Stall(self._release))
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()  # a client that left before the handshake (tests do that)

    def close(self) -> None:
        self._release.set()
        self._sock.close()
        for transport in self._transports:
            transport.close()

    def __enter__(self) -> StallingSSHServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
