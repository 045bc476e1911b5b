"""`ascend-pd sim serve`: a simulated vLLM prefill/decode instance (same options as
``python -m ascend_pd.simserver``). The lead attaches ``command`` to the ``sim`` group."""

from __future__ import annotations

import click

from ascend_pd.cli.output import finish
from ascend_pd.cli.session import Session, common, pass_session
from ascend_pd.simserver.config import BAD_ANSWERS, SimServerConfig
from ascend_pd.simserver.serve import run


@click.command("serve")
@click.option("--role", type=click.Choice(["prefill", "decode"]), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--model", required=True, help="Served model name.")
@click.option("--engine-id", default=None, help="remote_engine_id (default: a uuid4).")
@click.option("--prefill-ms-per-1k", type=float, default=20.0, show_default=True)
@click.option("--decode-ms-per-token", type=float, default=2.0, show_default=True)
@click.option("--kv-abort-timeout-s", type=float, default=480.0, show_default=True)
@click.option("--fail-first", type=int, default=0, help="503 for the first N requests.")
@click.option("--crash-after", type=int, default=None, help="Exit during request N+1.")
@click.option("--hang", is_flag=True, help="Accept connections, never answer.")
@click.option("--error-rate", type=float, default=0.0, help="Probability of a 500.")
@click.option("--recompute-rate", type=float, default=0.0,
              help="Decode: probability of stop_reason=recomputed half-way.")
@click.option("--seed", type=int, default=0)
@click.option("--max-model-len", type=int, default=32768, show_default=True)
@click.option("--api-key", default=None, help="Require Authorization: Bearer KEY on /v1.")
@click.option("--no-kv-params", is_flag=True, help="Prefill: answer without kv_transfer_params.")
@click.option("--layerwise", is_flag=True,
              help="MooncakeLayerwiseConnector: decode first, via the proxy's metaserver.")
@click.option("--bad-answer", type=click.Choice(list(BAD_ANSWERS)), default=None,
              help="Answer completions broken on purpose.")
@click.option("--prefix-cache-blocks", type=int, default=4096, show_default=True,
              help="Prefill prefix-cache capacity in 128-token blocks (0: off).")
@click.option("--compute-lanes", type=int, default=0, show_default=True,
              help="Prefills computed at once, FIFO (0: unbounded).")
@common
@pass_session
def command(session: Session, /, **options: object) -> None:
    """Serve a simulated vLLM OpenAI API (prints vLLM's startup lines on stdout)."""
    values = {k: v for k, v in options.items() if v is not None}
    code = run(SimServerConfig(**values))  # type: ignore[arg-type]
    finish(session.json, "sim serve", {"exit_code": code}, None, code)
