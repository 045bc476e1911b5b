"""Run commands inside a pod with ``kubectl exec``: the runner of ``check-links --target k8s``.

The pod stands for its node (the in-cluster preflight pods are pinned one per node, with the
node's driver tools mounted), so the netcheck code runs unchanged: the same argv, the same
``CommandResult``. kubectl itself runs through a :class:`LocalRunner`, bounded by a timeout.

What kubectl adds, and how it is taken back out:

* kubectl exits with the command's own status and, when it is not 0, appends ``command
  terminated with exit code N`` to stderr (kubectl ``pkg/cmd/util/helpers.go`` checkErr on
  the ``CodeExitError`` of ``client-go/tools/remotecommand``): that line is removed, so a
  parser sees what the tool printed.
* Any other failure (no such pod, container not running, API server unreachable) is
  kubectl's own, reported before the command ran: a :class:`HostUnreachableError` for the
  node, so a fan-out marks that node unreachable and carries on with the others.
* ``kubectl exec`` has no way to set environment variables, and a command line is visible
  to every user of the node: the environment travels on stdin, exported by the same
  wrapper the SSH runner sends (``ssh_command.remote_command``). That wrapper also runs the
  command under ``timeout(1)`` in the pod (the image needs ``sh``, ``dd`` and ``timeout``):
  a killed kubectl does not stop the process it started in the container.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Final

from ascend_pd.errors import CommandTimeoutError, HostUnreachableError
from ascend_pd.runners.base import DEFAULT_TIMEOUT_S, CommandResult, CommandRunner
from ascend_pd.runners.local import LocalRunner
from ascend_pd.runners.ssh_command import remote_command

#: what kubectl prints after a command that exited non-zero (removed from stderr)
_TERMINATED: Final = re.compile(r"^command terminated with exit code (\d+)\s*$", re.M)


class KubectlExecRunner(CommandRunner):
    """Runs commands in one pod (``kubectl exec -i -n NS POD [-c C] -- …``).

    Args:
        host: the spec host (node) the pod stands for, reported in results and errors.
        pod: the pod name.
        namespace: its namespace.
        container: the container, when the pod has several.
        kubectl: the kubectl binary.
        env: variables added to every command (per-call ``env`` wins).
    """

    def __init__(self, host: str, *, pod: str, namespace: str, container: str | None = None,
                 kubectl: str = "kubectl", env: Mapping[str, str] | None = None) -> None:
        super().__init__(host)
        self.pod = pod
        self.namespace = namespace
        self.container = container
        self.kubectl = kubectl
        self._env = dict(env or {})
        self._local = LocalRunner(host)

    def exec_argv(self, words: Sequence[str]) -> list[str]:
        """The kubectl command line that runs ``words`` in the pod."""
        argv = [self.kubectl, "exec", "-i", "-n", self.namespace, self.pod]
        if self.container:
            argv += ["-c", self.container]
        return [*argv, "--", *words]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        # As the SSH runner: the whole exec is held to ``timeout`` here, and the pod's own
        # timeout(1) ends the command 2 s later in case killing kubectl did not.
        limit = math.ceil(timeout) + 2
        command = remote_command(argv, {**self._env, **(env or {})}, limit_s=limit)
        try:
            done = self._local.run(self.exec_argv(command.argv), timeout=timeout,
                                   stdin=command.preamble + (stdin or b""))
        except CommandTimeoutError as exc:
            raise CommandTimeoutError(
                f"{self.host}: `{' '.join(argv)}` in pod {self.pod} did not finish within "
                f"{timeout:g} s", host=self.host,
                hint="the node or device may be hung; check it, or raise --timeout") from exc
        stderr = done.stderr
        marker = _TERMINATED.search(stderr)
        if marker is not None and int(marker.group(1)) == done.exit_code:
            stderr = stderr[:marker.start()] + stderr[marker.end():].lstrip("\n")
        elif done.exit_code != 0 and not done.stdout:
            # kubectl failed before the command ran (it says so on stderr).
            raise HostUnreachableError(
                f"{self.host}: kubectl exec into pod {self.namespace}/{self.pod} failed: "
                f"{done.tail('stderr', 2) or f'exit {done.exit_code}'}", host=self.host,
                hint=f"is the pod running? kubectl get pod -n {self.namespace} {self.pod} "
                     "-o wide; kubectl describe pod ... shows why not")
        return replace(done, argv=tuple(argv), stderr=stderr)
