"""`ascend-pd render`: write launch scripts, env files, the proxy script and manifest.json."""

from __future__ import annotations

import click

from ascend_pd.cli.k8s_target import render_k8s_cmd
from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, common, pass_session, spec_option
from ascend_pd.printer import finding_line
from ascend_pd.render import check_deploy, render_deploy


@click.command("render")
@spec_option
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default="deploy",
              show_default=True, help="Deployment directory to write.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 and show a diff if the directory is out of date.")
@click.option("--target", type=click.Choice(["ssh", "k8s"]), default="ssh", show_default=True,
              help="ssh: launch scripts per host; k8s: a kustomize directory (docs/kubernetes.md).")
@click.option("--python", "python", metavar="PATH",
              help="Sim mode: interpreter for the simulated server (default: this one).")
@common
@pass_session
def command(session: Session, out_dir: str, check: bool, target: str,
            python: str | None) -> None:
    """Render the deployment of a spec: per instance and host a launch script and env file,
    the proxy script, and manifest.json (what runs where)."""
    spec = session.spec()
    spec_path = str(session.spec_path) if session.spec_path else None
    if target == "k8s":
        render_k8s_cmd(session, spec, out_dir, spec_path, check=check)
        return
    if check:
        result = check_deploy(spec, out_dir, spec_path, python=python)
        if result.ok:
            human = f"{out_dir} is up to date"
        else:
            lines = [f"{out_dir} is out of date:"]
            lines += [f"  missing: {n}" for n in result.missing]
            lines += [f"  changed: {n}" for n in result.changed]
            lines += [f"  stale:   {n}" for n in result.extra]
            human = "\n".join(lines) + ("\n" + result.diff.rstrip("\n") if result.diff else "")
        finish(session.json, "render", result.to_dict(), human, 0 if result.ok else 1)
        return
    written = render_deploy(spec, out_dir, spec_path, python=python)
    lines = [f"wrote {len(written.files)} files to {out_dir} "
             f"({written.processes} server process(es)"
             + (", proxy" if written.proxy else "") + f"; {len(written.changed)} changed)"]
    lines += [f"removed stale {n}" for n in written.removed]
    lines += [finding_line(w) for w in written.warnings]
    lines.append(f"next: ascend-pd launch -c {spec_path or 'pd.yaml'}")
    finish(session.json, "render", written.to_dict(), "\n".join(lines), 0)
