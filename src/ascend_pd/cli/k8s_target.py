"""The ``--target k8s`` branch of render (and, later, launch/status/stop): thin over
``ascend_pd.k8s``."""

from __future__ import annotations

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session
from ascend_pd.k8s.render import check_k8s, render_k8s
from ascend_pd.spec.models import ClusterSpec


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
    lines += written.warnings
    lines += [f"next: kubectl apply -k {out_dir}/preflight   (checks every node)",
              f"      kubectl apply -k {out_dir}"]
    finish(session.json, "render", written.to_dict(), "\n".join(lines), 0)
