"""`ascend-pd doctor`: check every host's software, model, network identity, ports and NPUs."""

from __future__ import annotations

import shlex
import sys

import click

from ascend_pd.cli.output import Progress, finish
from ascend_pd.cli.session import Session, backend_option, common, pass_session, spec_option
from ascend_pd.doctor import run_doctor
from ascend_pd.errors import UsageError
from ascend_pd.k8s.preflight import read_reports
from ascend_pd.netcheck.html import doctor_html, write_html


@click.command("doctor")
@click.option("--host", "hosts", multiple=True, help="Check this spec host (repeatable).")
@click.option("--all", "all_hosts", is_flag=True, help="Check every host in the spec (default).")
@click.option("--from-k8s-logs", "k8s_logs", type=click.Path(exists=True, file_okay=False),
              help="Read the reports of the in-cluster preflight Jobs (their saved logs).")
@click.option("--deep", is_flag=True,
              help="Also read the vllm-ascend and vLLM installed on each host (source only, "
                   "no import) and check every env var, connector, additional_config key and "
                   "vllm serve flag the plan renders against them.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report (host x check grid, fixes).")
@spec_option
@backend_option
@common
@pass_session
def command(session: Session, hosts: tuple[str, ...], all_hosts: bool,
            k8s_logs: str | None, deep: bool, html_path: str | None) -> None:
    """Preflight each host: CANN/NNAL env, driver, versions, model dtype, host IP on the NIC,
    /etc/hccn.conf, planned ports, disk and NPU health. Exit 1 when a check fails."""
    if k8s_logs:
        report = read_reports(k8s_logs)
        finish(session.json, "doctor", report.to_dict(), report.render(), report.exit_code)
        return
    if hosts and all_hosts:
        raise UsageError("--host and --all exclude each other", hint="pass one of them")
    spec = session.spec()
    progress = Progress("doctor", enabled=not session.json)
    report = run_doctor(spec, session.runners(), list(hosts) or None, deep=deep,
                        on_done=progress.callback())
    progress.done()
    human = report.render()
    if html_path:
        command_line = shlex.join(["ascend-pd", *sys.argv[1:]])
        path = write_html(html_path, doctor_html(report, command_line,
                                                 report.exit_code))
        human += f"\nHTML report: {path}"
    finish(session.json, "doctor", report.to_dict(), human, report.exit_code)
