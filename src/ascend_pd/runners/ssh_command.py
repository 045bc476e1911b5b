"""The exec request the SSH runner sends: the command line (never any value of the
environment: a command line is visible to every user of the host) and the stdin preamble
that carries the environment (docs/security.md, "Secrets"). ``kubectl exec``
(``runners.kubectl_exec``) sends the same words as an argv: it has no way to pass
environment variables either."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ascend_pd.errors import RunnerError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: The remote wrapper: $1 = bytes of environment preamble on stdin, $2 = host-side time
#: limit (0 = none), then the command. The preamble (``export K='v'`` lines) is read with
#: ``dd bs=1`` so that not one byte more is taken from stdin: the rest is the command's.
_REMOTE_WRAPPER = (
    'n=$1; lim=$2; shift 2; '
    'if [ "$n" -gt 0 ]; then eval "$(dd bs=1 count="$n" 2>/dev/null)"; fi; '
    'if [ "$lim" -gt 0 ] && command -v timeout >/dev/null 2>&1; then '
    'exec timeout -k 5 "$lim" "$@"; fi; '
    'exec "$@"'
)


@dataclass(frozen=True)
class RemoteCommand:
    """What is sent for one command: the words to run (no values of the environment in
    them) and the bytes written to the channel's stdin before the caller's input."""

    argv: tuple[str, ...]
    preamble: bytes

    @property
    def line(self) -> str:
        """The words as one shell line (an SSH exec request is a string)."""
        return shlex.join(self.argv)


def remote_command(argv: Sequence[str], env: Mapping[str, str],
                   limit_s: int | None = None) -> RemoteCommand:
    """The exec request for ``argv`` with ``env``, every word quoted.

    sshd usually refuses client-sent variables (``AcceptEnv``), and a command line is
    visible to every user of the host (``ps``, ``/proc/*/cmdline``), so environment values
    (secrets: API keys, tokens) travel on the channel's stdin and the remote shell exports
    them before ``exec``. With ``limit_s`` the command runs under ``timeout(1)`` on the host:
    closing the channel does not stop a hung command (sshd ignores signal requests for root
    sessions), so the host enforces the deadline itself.
    """
    if not argv:
        raise RunnerError("empty command", hint="pass the program and its arguments")
    for name in env:
        if not _ENV_NAME.match(name):
            raise RunnerError(
                f"invalid environment variable name {name!r}",
                hint="names are letters, digits and '_', not starting with a digit",
            )
    preamble = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()).encode()
    if not preamble and limit_s is None:
        return RemoteCommand(tuple(argv), b"")
    return RemoteCommand(("sh", "-c", _REMOTE_WRAPPER, "sh", str(len(preamble)),
                          str(limit_s or 0), *argv), preamble)
