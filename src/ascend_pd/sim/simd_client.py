"""The thin stand-in: ask the resident simulator daemon, start it when none runs.

The ``hccn_tool`` / ``npu-smi`` wrappers written by ``ascend-pd sim install-tools`` run this
file directly with ``python -I -S`` (no site, no package import), because starting the
full stand-in costs what importing ascend_pd costs. Measured on the shared 2-core dev
machine (Nov 2026, load average ~8, ``benchmarks/sim_standin_bench.py``): the one-shot
``python -m ascend_pd.sim.hccn_tool`` took 217 ms of CPU per call (~60 ms when idle), the
thin client 28 ms plus about a millisecond in the daemon. check-links in the demo went from
74 s to 9 s, the whole demo from 89 s to 30 s on that machine.

It therefore imports only builtin modules (``_socket`` rather than ``socket``, ``marshal``
rather than ``json``, ``zlib`` rather than ``hashlib``: ``json`` pulls in ``re`` and
``socket`` pulls in ``enum``, ~30 ms together), and nothing else imports it except the
daemon (``ascend_pd.sim.simd``), which takes ``socket_path`` from here so both agree.
When the daemon cannot be reached or started, it runs the full stand-in instead (same
bytes, only slower): the daemon is a speed-up, never a new way to fail.
"""

from __future__ import annotations

import _socket
import marshal
import os
import sys
import time
import zlib

CLUSTER_ENV = "ASCEND_PD_SIM_CLUSTER"
HOST_ENV = "ASCEND_PD_SIM_HOST"
MODULES = {"hccn_tool": "ascend_pd.sim.hccn_tool", "npu-smi": "ascend_pd.sim.npu_smi",
           "nvidia-smi": "ascend_pd.sim.nvidia_smi"}
#: how long a client waits for a daemon it started to listen (then: the full stand-in)
START_WAIT_S = 10.0


def socket_path(cluster: str, python: str) -> str:
    """The daemon's unix socket for a cluster file and interpreter.

    In the temp directory, not next to the cluster file: socket paths are limited to
    107 bytes. The interpreter is part of the key so two checkouts never share a daemon
    running the other's code.
    """
    raw = f"{os.path.realpath(cluster)}\0{python}".encode()
    key = f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}"
    tmp = os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(tmp, f"ascend-pd-simd-{os.getuid()}-{key}.sock")


def _ask(path: str, request: bytes) -> dict[str, object] | None:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendall(request)
        sock.shutdown(_socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        sock.close()
    try:
        reply = marshal.loads(b"".join(chunks))  # noqa: S302 (our daemon, mode 0600)
    except (EOFError, ValueError, TypeError):
        return None
    return reply if isinstance(reply, dict) else None


def _start_daemon(path: str, python: str) -> int:
    """Fork the daemon into its own session, detached from our pipes; its pid."""
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execv(python, [python, "-m", "ascend_pd.sim.simd", path])  # noqa: S606
    finally:
        os._exit(127)


def _fallback(prog: str, python: str) -> None:
    os.execv(python, [python, "-m", MODULES[prog], *sys.argv[2:]])  # noqa: S606


def main() -> None:
    """``simd_client.py PROG ARGS…``: print what PROG would, exit with its status."""
    prog = sys.argv[1]
    python = sys.executable
    cluster, host = os.environ.get(CLUSTER_ENV), os.environ.get(HOST_ENV)
    if not cluster or not host:
        _fallback(prog, python)  # prints the tool's own message about the variables
    assert cluster is not None
    path = socket_path(cluster, python)
    request = marshal.dumps({"prog": prog, "cluster": os.path.realpath(cluster), "host": host,
                             "argv": [prog, *sys.argv[2:]]})
    reply = _ask(path, request)
    if reply is None:
        pid = _start_daemon(path, python)
        deadline = time.monotonic() + START_WAIT_S
        delay = 0.005
        while reply is None and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
            reply = _ask(path, request)
            if reply is None and pid:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    pid = 0
                    # Exit 0: another client's daemon won the lock; keep asking it.
                    # Anything else: no daemon can run here; answer the slow way.
                    if os.waitstatus_to_exitcode(status) != 0:
                        break
    if reply is None:
        _fallback(prog, python)
        return
    delay_s = float(reply.get("delay_s") or 0.0)  # type: ignore[arg-type]
    if delay_s:
        time.sleep(delay_s)  # a hung device: the caller's timeout kills this process
    sys.stdout.buffer.write(str(reply["stdout"]).encode())
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(str(reply["stderr"]).encode())
    sys.stderr.buffer.flush()
    sys.exit(int(reply["exit_code"]))  # type: ignore[call-overload]


if __name__ == "__main__":
    main()
