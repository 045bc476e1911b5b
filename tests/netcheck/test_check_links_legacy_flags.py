"""check-links takes gen_ranktable.sh's flags, and --network-card-name checks the NIC."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.cli.check_links_cmd import command as check_links
from ascend_pd.cli.gen_ranktable_cmd import command as gen_ranktable
from ascend_pd.cli.legacy import LEGACY_FLAGS
from ascend_pd.examples import example_spec


def _flags(command: Any) -> set[str]:
    return {opt for param in command.params for opt in param.opts if opt.startswith("--")}


def test_both_commands_take_every_gen_ranktable_sh_flag() -> None:
    assert set(LEGACY_FLAGS) <= _flags(check_links)
    assert set(LEGACY_FLAGS) <= _flags(gen_ranktable)


def _nic_findings(nic: str) -> tuple[int, list[dict[str, Any]]]:
    # This machine as the only node: 127.0.0.1 sits on lo. (No NPU tools here, so the
    # device checks report the host unreachable; the NIC check reads `ip addr` anyway.)
    result = CliRunner().invoke(cli, [
        "check-links", "--ips", "127.0.0.1", "--npus-per-node", "2", "--network-card-name",
        nic, "--prefill-device-cnt", "1", "--decode-device-cnt", "1", "--timeout", "5",
        "--json"])
    doc = json.loads(result.output)
    return result.exit_code, [f for f in doc["data"]["findings"] if f["check"] == "nic"]


def test_the_node_ip_must_be_on_the_named_nic() -> None:
    _code, findings = _nic_findings("eth9")
    assert [(f["where"]["host"], f["severity"], f["message"], f["expected"])
            for f in findings] == [("127.0.0.1", "error", "127.0.0.1 is on lo", "127.0.0.1 on eth9")]
    assert "--network-card-name lo" in findings[0]["fix"]
    assert _nic_findings("lo")[1] == []


def test_nic_flag_and_a_spec_are_refused_together(tmp_path: Any) -> None:
    spec = tmp_path / "pd.yaml"
    spec.write_text(example_spec("a2-1p1d"))
    result = CliRunner().invoke(cli, ["check-links", "-c", str(spec), "--network-card-name",
                                      "eth0"])
    assert result.exit_code == 2
    assert "give either -c SPEC or --network-card-name" in result.output
