"""`ascend-pd diagnose`: name the known problem behind an error in vLLM / HCCL logs."""

from __future__ import annotations

import click

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, backend_option, common, pass_session, spec_option
from ascend_pd.diagnose import diagnose_logs, read_instance_logs, read_log_files
from ascend_pd.errors import UsageError
from ascend_pd.runners.factory import make_runner


@click.command("diagnose")
@click.argument("logfiles", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--host", help="Read the instance log(s) on this spec host (needs -c and --role).")
@click.option("--role", type=click.Choice(["prefill", "decode"]),
              help="Which instances' logs to read on --host.")
@spec_option
@backend_option
@common
@pass_session
def command(session: Session, logfiles: tuple[str, ...], host: str | None,
            role: str | None) -> None:
    """Match LOGFILEs (or an instance's log on a host) against known P/D failures.

    Exit 1 when a known problem was found, 0 when the logs are clean.
    """
    if bool(host) != bool(role):
        raise UsageError("--host and --role go together", hint="e.g. --host node0 --role decode")
    if not logfiles and not host:
        raise UsageError("nothing to diagnose",
                         hint="pass log files, or --host H --role R -c pd.yaml")
    logs = read_log_files(logfiles)
    if host and role:
        spec = session.spec()
        with make_runner(spec, host, session.resolved_backend(),
                         spec_dir=session.spec_dir) as runner:
            logs += read_instance_logs(spec, host, role, runner)
    report = diagnose_logs(logs)
    finish(session.json, "diagnose", report.to_dict(), report.render(), report.exit_code)
