"""Host-key verification against an OpenSSH known_hosts file, for the SSH runner.

``strict`` refuses a host that is not in the file; ``accept-new`` records a first-seen
key (atomically, with a warning naming its fingerprint); both refuse a key that differs
from the recorded one. Nothing is ever accepted silently (no paramiko AutoAddPolicy).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import paramiko

from ascend_pd.errors import HostKeyError
from ascend_pd.fsutil import atomic_write_text

log = logging.getLogger(__name__)

HostKeyPolicy = Literal["strict", "accept-new"]

#: one writer at a time per process (read, append, rename of the same file)
_WRITE_LOCK = threading.Lock()


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style fingerprint, e.g. ``SHA256:abc...`` (what ``ssh-keygen -l`` prints)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    """The host field OpenSSH writes in known_hosts: ``addr`` on port 22, else ``[addr]:port``."""
    return address if port == 22 else f"[{address}]:{port}"


class KnownHosts:
    """One known_hosts file and the policy for hosts missing from it.

    Args:
        path: the file (``~`` expanded); it may not exist yet.
        policy: ``strict`` or ``accept-new``.
    """

    def __init__(self, path: str | Path, policy: HostKeyPolicy = "strict") -> None:
        self.path = Path(path).expanduser()
        self.policy = policy

    def load(self) -> paramiko.HostKeys:
        """Parse the file afresh (another runner may have appended to it).

        Raises:
            HostKeyError: a line paramiko cannot use (``@cert-authority`` / ``@revoked``
                markers, a damaged key), naming the line and what to do.
        """
        keys = paramiko.HostKeys()
        if not self.path.is_file():
            return keys
        try:
            keys.load(str(self.path))
        except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError,
                UnicodeDecodeError) as exc:
            raise self._unusable(exc) from exc
        except OSError as exc:
            raise HostKeyError(f"cannot read {self.path}: {exc.strerror}",
                               hint="Check the file's permissions (ssh.known_hosts)") from exc
        return keys

    def _unusable(self, exc: Exception) -> HostKeyError:
        bad = str(getattr(exc, "line", "")).strip()
        number = ""
        try:
            for n, line in enumerate(self.path.read_text(encoding="utf-8", errors="replace")
                                     .splitlines(), 1):
                if bad and line.strip() == bad:
                    number = f" line {n}"
                    break
        except OSError:
            pass
        shown = (bad[:60] + "...") if len(bad) > 60 else bad
        if bad.startswith("@"):
            what = f"{bad.split()[0]} entries are not supported (they are OpenSSH " \
                   "certificate/revocation markers)"
        else:
            what = f"cannot be parsed ({getattr(exc, 'exc', None) or exc})"
        return HostKeyError(
            f"{self.path}{number}: {what}: {shown}",
            hint="Give ascend-pd a known_hosts file with the hosts' plain keys: "
            "`ssh-keyscan -p PORT HOST >> FILE` (after checking the fingerprints), and set "
            "ssh.known_hosts: FILE in the spec; or remove that line.",
        )

    def key_types(self, address: str, port: int) -> list[str]:
        """Key types recorded for the host, to ask the server for one we can verify."""
        known = self.load().lookup(known_hosts_name(address, port))
        return list(known) if known else []

    def verify(self, host: str, address: str, port: int, key: paramiko.PKey) -> str | None:
        """Accept ``key`` for ``address:port`` or raise HostKeyError.

        Returns:
            The fingerprint when the key was recorded now (accept-new), else None.
        """
        name, fp = known_hosts_name(address, port), fingerprint(key)
        known = self.load().lookup(name)
        if known:
            self._require_same(host, name, key, known)
            return None
        if self.policy == "accept-new":
            return self._record(host, name, key)
        raise HostKeyError(
            f"{host}: {name} is not in {self.path} (server offers {key.get_name()} {fp})",
            host=host,
            hint=f"Record it after checking the fingerprint: `ssh-keyscan -p {port} "
            f"{address} >> {self.path}`, or set `ssh: {{host_key_policy: accept-new}}` "
            "to record first-seen hosts automatically",
        )

    def _require_same(
        self, host: str, name: str, key: paramiko.PKey, known: Mapping[str, paramiko.PKey]
    ) -> None:
        if known.get(key.get_name()) == key:
            return
        fp = fingerprint(key)
        recorded = ", ".join(f"{t} {fingerprint(k)}" for t, k in known.items())
        raise HostKeyError(
            f"{host}: host key for {name} CHANGED: server offers {key.get_name()} {fp}, "
            f"{self.path} has {recorded}",
            host=host,
            hint="Possible man-in-the-middle, or the host was reinstalled. After verifying "
            f"{fp} on the host (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`), remove the "
            f"old entry: `ssh-keygen -R '{name}' -f {self.path}`",
        )

    def _record(self, host: str, name: str, key: paramiko.PKey) -> str | None:
        with _WRITE_LOCK:
            # Re-check under the lock: another runner may have recorded it meanwhile.
            known = self.load().lookup(name)
            if known:
                self._require_same(host, name, key, known)
                return None
            try:
                old = self.path.read_text(encoding="utf-8")
                mode = self.path.stat().st_mode & 0o777
            except FileNotFoundError:
                old, mode = "", 0o600
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if old and not old.endswith("\n"):
                old += "\n"
            line = f"{name} {key.get_name()} {key.get_base64()}\n"
            atomic_write_text(self.path, old + line, mode=mode)
        fp = fingerprint(key)
        log.warning("%s: new host %s recorded in %s with key %s %s (host_key_policy: "
                    "accept-new)", host, name, self.path, key.get_name(), fp)
        return fp
