"""The daemon's second door: loopback TCP for the bash fast path of the stand-in wrappers.

A wrapper call through the Python thin client costs a Python start (~10 ms of CPU idle,
~28 ms at load 11 on the shared 2-core machine); check-links in the demo makes ~480 of them.
bash reaches a TCP port with builtins alone (``/dev/tcp``, ``printf``, ``read``), ~3 ms a
call, so the wrappers (``sim.install``) try this port first and fall back to the thin client.

Unlike the unix socket (mode 0600), a loopback port is open to every local user, so each
request carries a random token that only this user can read: the daemon writes ``PORT
TOKEN`` to the address file (mode 0600, next to the cluster file, named by the wrapper),
and removes it when it exits. A request without the token gets nothing back.

Protocol (bash can neither half-close a socket nor hold a NUL byte in a variable):
request = NUL-terminated fields ``TOKEN PROG CLUSTER HOST N ARG1 … ARGN``; answer = one
line ``EXIT DELAY NOUT NERR`` then NOUT bytes of stdout and NERR bytes of stderr.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socketserver
import threading
from collections.abc import Callable
from typing import Final

from ascend_pd.sim.entry import ANSWERS, answer_tool

MAX_REQUEST: Final[int] = 1 << 20


def _fields(sock: socketserver.BaseRequestHandler) -> list[str] | None:
    """The request's fields once all N arguments arrived; None when it is cut short."""
    buf = b""
    while len(buf) < MAX_REQUEST:
        parts = buf.split(b"\0")
        done = parts[:-1]
        if len(done) >= 5 and done[4].isdigit() and len(done) >= 5 + int(done[4]):
            return [p.decode("utf-8", "replace") for p in done[:5 + int(done[4])]]
        chunk = sock.request.recv(65536)
        if not chunk:
            return None
        buf += chunk
    return None


class TcpFront:
    """The TCP listener of one daemon and its address file."""

    def __init__(self, addr_file: str, touch: Callable[[], None]) -> None:
        self.addr_file = addr_file
        self.token = secrets.token_hex(16)
        front = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                touch()
                fields = _fields(self)
                if not fields or not secrets.compare_digest(fields[0], front.token) \
                        or fields[1] not in ANSWERS:
                    return  # a stranger, or a cut request: no answer at all
                prog, cluster, host = fields[1:4]
                reply = answer_tool(prog, cluster, host, [prog, *fields[5:]])
                out, err = reply.stdout.encode(), reply.stderr.encode()
                head = f"{reply.exit_code} {reply.delay_s:g} {len(out)} {len(err)}\n"
                self.request.sendall(head.encode() + out + err)
                touch()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.5}, daemon=True)

    def start(self) -> None:
        """Listen, then publish ``PORT TOKEN`` (owner-only, replaced atomically)."""
        self._thread.start()
        tmp = f"{self.addr_file}.tmp.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{self.port} {self.token}\n")
        os.replace(tmp, self.addr_file)

    def stop(self) -> None:
        """Withdraw the address (if it is still ours), then stop listening."""
        with contextlib.suppress(OSError):
            with open(self.addr_file) as handle:
                ours = handle.read().split() == [str(self.port), self.token]
            if ours:
                os.unlink(self.addr_file)
        self.server.shutdown()
        self.server.server_close()
