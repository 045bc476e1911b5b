"""docs/exit-codes.md is what the CLI does: every code of its table, for a real case.

The table is parsed from the document, so a code added there without a case here fails.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from ascend_pd import errors
from ascend_pd.cli import App, cli
from ascend_pd.examples import example_spec
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.sim.faults import apply_fault

DOC = Path(__file__).resolve().parent.parent / "docs" / "exit-codes.md"
DIAGNOSE = Path(__file__).resolve().parent / "data" / "diagnose"


def documented_codes() -> dict[int, str]:
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", DOC.read_text(encoding="utf-8"), re.M)
    return {int(code): meaning.strip() for code, meaning in rows}


def _invoke(*args: str) -> int:
    result = CliRunner().invoke(cli, [*args, "--json"])
    doc = json.loads(result.output)  # --json: always the envelope, never a traceback
    assert doc["exit_code"] == result.exit_code, result.output
    return result.exit_code


def _sim_spec(tmp: Path, **changes: Any) -> tuple[Path, Path]:
    cluster = tmp / "sim.yaml"
    save_cluster(generate_cluster([("node-p", "192.0.2.11"), ("node-d", "192.0.2.12")]), cluster)
    data = yaml.safe_load(example_spec("a2-1p1d"))
    data.update(sim={"cluster": "sim.yaml"}, backend="sim", **changes)
    spec = tmp / "pd.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec, cluster


def _ok(tmp: Path) -> int:
    spec, _ = _sim_spec(tmp)
    return _invoke("validate", "-c", str(spec))


def _findings(tmp: Path) -> int:
    return _invoke("diagnose", str(DIAGNOSE / "port-in-use.log"))


def _usage(tmp: Path) -> int:
    return _invoke("validate", "-c", str(tmp / "missing.yaml"))


def _unreachable(tmp: Path) -> int:
    # A closed port on loopback: the SSH connection is refused, for every host.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return _invoke("check-links", "--ips", "127.0.0.1", "--prefill-device-cnt", "1",
                   "--decode-device-cnt", "1", "--backend", "ssh", "--ssh-port", str(port),
                   "--host-key-policy", "accept-new", "--known-hosts", str(tmp / "kh"))


def _ranktable(tmp: Path) -> int:
    spec, cluster = _sim_spec(tmp)
    data = yaml.safe_load(cluster.read_text())
    data["hosts"][1]["address"] = "192.0.2.99"  # not the spec's address of node-d
    cluster.write_text(yaml.safe_dump(data))
    return _invoke("gen-ranktable", "-c", str(spec), "-o", str(tmp / "rt.json"))


def _proxy(tmp: Path) -> int:
    return _invoke("proxy", "--prefill", "10.0.0.5", "--decode", "10.0.0.6:8200", "--dry-run")


def _no_ip(tmp: Path) -> int:
    spec, cluster = _sim_spec(tmp)
    apply_fault(cluster, "node-d", "no-ip", device=3)
    return _invoke("gen-ranktable", "-c", str(spec), "-o", str(tmp / "rt.json"))


def _raised(error: errors.AscendPDError) -> Callable[[Path], int]:
    """Codes raised deep inside a command (parser, template, launcher): the one boundary
    (``App.invoke``) turns the error class into its code, with the envelope."""

    def case(tmp: Path) -> int:
        app = App("ascend-pd")

        @app.command("boom")
        @click.option("--json", "as_json", is_flag=True)
        def boom(as_json: bool) -> None:
            raise error

        result = CliRunner().invoke(app, ["boom", "--json"])
        assert "Traceback" not in result.output
        return result.exit_code

    return case


CASES: dict[int, Callable[[Path], int]] = {
    0: _ok,
    1: _findings,
    2: _usage,
    3: _unreachable,
    4: _raised(errors.ParseError("unexpected line", line="garbage")),
    5: _ranktable,
    6: _raised(errors.RenderError("template 'x' could not be rendered")),
    7: _raised(errors.LaunchError("prefill-0@node-p did not become ready")),
    8: _proxy,
    13: _no_ip,
}


def test_every_documented_code_has_a_case() -> None:
    assert sorted(documented_codes()) == sorted(CASES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_the_cli_returns_the_documented_code(code: int, tmp_path: Path) -> None:
    assert code in documented_codes()
    assert CASES[code](tmp_path) == code
