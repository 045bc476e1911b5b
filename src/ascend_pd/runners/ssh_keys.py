"""Private keys the SSH runner offers: the spec's key, else OpenSSH's default identities."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Final

import paramiko

from ascend_pd.errors import SSHAuthError

#: identities tried when the spec names no key, in OpenSSH's order (config is not read)
DEFAULT_IDENTITIES: Final[tuple[str, ...]] = ("id_ed25519", "id_ecdsa", "id_rsa")


def load_identities(host: str, key_filename: str | None) -> list[paramiko.PKey]:
    """The keys to offer for ``host``.

    Raises:
        SSHAuthError: the named key is unreadable or needs a passphrase (use ssh-agent).
    """
    keys: list[paramiko.PKey] = []
    if key_filename:
        path = Path(key_filename).expanduser()
        try:
            keys.append(paramiko.PKey.from_path(str(path)))
        # cryptography reports an encrypted key as TypeError through PKey.from_path
        except (paramiko.PasswordRequiredException, TypeError) as exc:
            raise SSHAuthError(
                f"{host}: key {path} is protected by a passphrase",
                host=host, hint=f"Load it into ssh-agent: `ssh-add {path}`",
            ) from exc
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise SSHAuthError(
                f"{host}: cannot read private key {path}: {exc}",
                host=host, hint="Check ssh.key / hosts[].ssh.key in the spec",
            ) from exc
    else:
        for name in DEFAULT_IDENTITIES:
            path = Path("~/.ssh").expanduser() / name
            if path.is_file():
                with contextlib.suppress(OSError, paramiko.SSHException, ValueError):
                    keys.append(paramiko.PKey.from_path(str(path)))
    return keys
