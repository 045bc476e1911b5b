"""The resident simulator daemon behind the thin stand-in (``ascend_pd.sim.simd_client``).

``python -m ascend_pd.sim.simd SOCKET`` answers stand-in calls over a unix socket with
``entry.answer_tool`` (the same code as the one-shot executables, so the same bytes), one
thread per call so a set command holding hccn_tool's lock does not block queries. It
keeps the cluster file parsed between calls (``SimNode``'s cache re-reads it when it
changes). Started by the first client that finds none; one per socket (an ``flock`` on
``SOCKET.lock``); exits after ``IDLE_S`` without a call, so nothing is left running.

Protocol: the client sends one ``marshal``-ed dict ``{prog, cluster, host, argv}`` and shuts its
write side; the daemon answers ``{exit_code, stdout, stderr, delay_s}`` and closes. The
client sleeps ``delay_s`` itself, so a hung device is a hung client its caller can kill.
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import socketserver
import sys
import threading
import time
from typing import Final

from ascend_pd.sim.entry import ANSWERS, answer_tool
from ascend_pd.sim.simd_tcp import TcpFront

#: seconds without a call after which the daemon exits (a demo or test run is long over)
IDLE_S: Final[float] = float(os.environ.get("ASCEND_PD_SIMD_IDLE_S", "30"))
#: largest request accepted (an argv is a few hundred bytes)
MAX_REQUEST: Final[int] = 1 << 20


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.touch()
        raw = self.rfile.read(MAX_REQUEST)
        try:
            # Only this user's clients can connect (socket mode 0600), and they send a
            # dict of strings; marshal is the one codec the client can import for free.
            req = marshal.loads(raw)  # noqa: S302
            prog, argv = str(req["prog"]), [str(a) for a in req["argv"]]
            if prog not in ANSWERS:
                raise ValueError(prog)
            reply = answer_tool(prog, req.get("cluster"), req.get("host"), argv)
            body = {"exit_code": reply.exit_code, "stdout": reply.stdout,
                    "stderr": reply.stderr, "delay_s": reply.delay_s}
        except (EOFError, ValueError, KeyError, TypeError) as exc:
            body = {"exit_code": 1, "stdout": "", "delay_s": 0.0,
                    "stderr": f"ascend-pd sim daemon: bad request: {exc}\n"}
        self.wfile.write(marshal.dumps(body))
        self.server.touch()


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        super().__init__(path, _Handler)
        self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()


def serve(path: str, idle_s: float = IDLE_S, addr_file: str | None = None) -> int:
    """Serve on ``path`` until idle for ``idle_s``; 0 also when another daemon owns it.

    With ``addr_file`` (named by the wrapper that started us), also listen on loopback TCP
    for the wrappers' bash fast path and publish the address there (``sim.simd_tcp``).
    """
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    # A daemon that is just exiting holds the lock for up to one poll interval; another
    # one that is serving holds it for good (the client then simply finds it).
    for _ in range(40):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if os.path.exists(path):
                os.close(lock)
                return 0
            time.sleep(0.05)
    else:
        os.close(lock)
        return 0
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a stale socket of a daemon that died
    server = _Server(path)
    os.chmod(path, 0o600)
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                              daemon=True)
    worker.start()
    front = None
    if addr_file:
        try:
            front = TcpFront(addr_file, server.touch)
            front.start()
        except OSError:
            front = None  # no fast path (e.g. the cluster's directory is read-only)
    try:
        while time.monotonic() - server.last < idle_s:
            time.sleep(min(1.0, idle_s))
    finally:
        if front is not None:
            front.stop()
        # Unlink first: a client arriving now starts a fresh daemon instead of waiting.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        server.shutdown()
        server.server_close()
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], addr_file=sys.argv[2] if len(sys.argv) > 2 else None))
