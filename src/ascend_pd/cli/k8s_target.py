"""The ``--target k8s`` branch of render, validate, launch, status and stop: thin over
``ascend_pd.k8s`` (kubectl runs through the local runner)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ascend_pd.cli.output import Progress, finish, table
from ascend_pd.cli.session import Session
from ascend_pd.errors import LaunchError
from ascend_pd.k8s import kubectl as kubectl_api
from ascend_pd.k8s.kubectl import K8sAction
from ascend_pd.k8s.render import check_k8s, render_k8s
from ascend_pd.printer import finding_line
from ascend_pd.runners.local import LocalRunner
from ascend_pd.spec.models import ClusterSpec

F = TypeVar("F", bound=Callable[..., Any])


def render_k8s_cmd(session: Session, spec: ClusterSpec, out_dir: str, spec_path: str | None,
                   *, check: bool) -> None:
    if check:
        result = check_k8s(spec, out_dir, spec_path)
        lines = [f"{out_dir} is up to date" if result.ok else f"{out_dir} is out of date:"]
        lines += [f"  missing: {n}" for n in result.missing]
        lines += [f"  changed: {n}" for n in result.changed]
        lines += [f"  stale:   {n}" for n in result.extra]
        if result.diff:
            lines.append(result.diff.rstrip("\n"))
        finish(session.json, "render", {"target": "k8s", **result.to_dict()}, "\n".join(lines),
               0 if result.ok else 1)
        return
    written = render_k8s(spec, out_dir, spec_path)
    lines = [f"wrote {len(written.files)} files to {out_dir} ({len(written.objects)} objects; "
             f"{len(written.changed)} changed)"]
    lines += [f"removed stale {n}" for n in written.removed]
    lines += [finding_line(w) for w in written.warnings]
    lines += [f"next: kubectl apply -k {out_dir}/preflight   (doctor on every node)",
              f"      ascend-pd check-links -c {spec_path or 'pd.yaml'} --target k8s   "
              "(P↔D links, one pod per node)",
              f"      kubectl apply -k {out_dir}"]
    finish(session.json, "render", written.to_dict(), "\n".join(lines), 0)


#: --target ssh|k8s
TARGET_OPTION = click.option(
    "--target", type=click.Choice(["ssh", "k8s"]), default="ssh", show_default=True,
    help="k8s: kubectl on the rendered kustomize dir.")
#: the kubectl binary of every --target k8s command
KUBECTL_OPTION = click.option(
    "--kubectl", envvar="ASCEND_PD_KUBECTL", default="kubectl", show_default=True,
    help="k8s: the kubectl binary (env ASCEND_PD_KUBECTL).")


def target_options(func: F) -> F:
    """--target ssh|k8s, and for k8s the kustomize directory and the kubectl to run."""
    for option in reversed((
        TARGET_OPTION,
        click.option("--deploy-dir", default="deploy-k8s", show_default=True,
                     help="k8s: the kustomize directory launch renders and applies."),
        KUBECTL_OPTION,
    )):
        func = option(func)
    return func


def _finish(session: Session, name: str, result: K8sAction, fail_code: int) -> None:
    rows = [(f"{w.kind}/{w.name}", f"{w.ready}/{w.wanted}", "yes" if w.ok else "no", w.note)
            for w in result.workloads]
    text = table(["workload", "ready", "ok", "note"], rows) if rows else ""
    if result.objects is not None:
        text = result.objects.rstrip("\n") + ("\n\n" + text if text else "")
    if result.error:
        text += f"\n\n{result.error}"
    finish(session.json, name, result.to_dict(), text.strip("\n"),
           0 if result.ok else fail_code)


def launch_k8s_cmd(session: Session, *, deploy_dir: str, kubectl: str, dry_run: bool,
                   timeout_s: float) -> None:
    progress = Progress("launch", enabled=not session.json)
    spec_path = str(session.spec_path) if session.spec_path else None
    result = kubectl_api.launch(session.spec(), LocalRunner(), deploy_dir, kubectl=kubectl,
                                spec_path=spec_path, dry_run=dry_run, timeout_s=timeout_s,
                                progress=progress.step)
    _finish(session, "launch", result, LaunchError.exit_code)


def status_k8s_cmd(session: Session, *, kubectl: str) -> None:
    _finish(session, "status", kubectl_api.status(session.spec(), LocalRunner(),
                                                  kubectl=kubectl), 1)


def stop_k8s_cmd(session: Session, *, kubectl: str) -> None:
    _finish(session, "stop", kubectl_api.stop(session.spec(), LocalRunner(), kubectl=kubectl),
            1)
