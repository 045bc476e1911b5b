"""A corpus of broken specs: each must give one line naming the key/host, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.errors import SpecError
from ascend_pd.examples import example_spec
from ascend_pd.spec import parse_spec

BASE = example_spec("a2-1p1d")


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (id, spec text, substrings the single error line must contain)
CORPUS = [
    ("unknown-top-key", BASE + "proxxy: {}\n", ["proxxy", "line", "unknown key"]),
    ("typo-tp", edit("    tp: 8\n", "    tpp: 8\n"), ["prefill[0].tpp", "did you mean 'tp'"]),
    ("typo-host-key", edit("    nic: eth0\n", "    nics: eth0\n"), ["hosts[1].nics", "'nic'"]),
    ("wrong-type-port", edit("    port: 8100\n", "    port: eighty\n"), ["prefill[0].port", "integer"]),
    ("port-out-of-range", edit("    port: 8200\n", "    port: 70000\n"), ["decode[0].port", "65535"]),
    ("bad-connector", edit("type: mooncake", "type: pynccl"), ["connector.type", "'pynccl'"]),
    ("bad-hardware", edit("hardware: a2", "hardware: a5"), ["hardware", "'a5'"]),
    ("missing-model", BASE.split("model:")[0] + "connector:" + BASE.split("\nconnector:")[1],
     ["model", "missing"]),
    ("dup-address", edit("address: 192.0.2.12", "address: 192.0.2.11"),
     ["hosts[1].address", "192.0.2.11"]),
    ("unknown-host-ref", edit("hosts: [node-d]", "hosts: [node-dd]"),
     ["decode[0].hosts[0]", "node-dd", "did you mean 'node-d'"]),
    ("device-not-on-host", edit("    devices: [0, 1, 2, 3, 4, 5, 6, 7]\n    tp: 8\n    dp: 1\n    port: 8200",
                                "    devices: [0, 1, 2, 3, 4, 5, 6, 9]\n    tp: 8\n    dp: 1\n    port: 8200"),
     ["decode[0].devices", "[9]", "node-d"]),
    ("device-used-twice", edit("hosts: [node-d]", "hosts: [node-p]"),
     ["decode[0].devices", "node-p", "prefill-0"]),
    ("tp-dp-mismatch", edit("    tp: 8\n    dp: 1\n    port: 8100", "    tp: 4\n    dp: 1\n    port: 8100"),
     ["prefill[0].tp", "4×1", "8 devices"]),
    ("port-clash", edit("  host: node-p\n  port: 8000", "  host: node-p\n  port: 8100"),
     ["proxy.port", "8100", "node-p"]),
    ("proxy-unknown-host", edit("  host: node-p\n  port: 8000", "  host: nodep\n  port: 8000"),
     ["proxy.host", "nodep"]),
    ("device-out-of-range", edit("    devices: [0, 1, 2, 3, 4, 5, 6, 7]\n  - name: node-d",
                                 "    devices: [0, 1, 2, 3, 4, 5, 6, 17]\n  - name: node-d"),
     ["hosts[0].devices", "17"]),
    ("not-a-mapping", "- just\n- a list\n", ["mapping"]),
    ("bad-yaml", "hosts: [\n  name: x\n", ["not valid YAML", "line"]),
    ("dup-instance-name", edit("  - name: decode-0", "  - name: prefill-0"),
     ["decode[0].name", "prefill-0"]),
    ("empty-devices", edit("    devices: [0, 1, 2, 3, 4, 5, 6, 7]\n    tp: 8\n    dp: 1\n    port: 8100",
                           "    devices: []\n    tp: 8\n    dp: 1\n    port: 8100"),
     ["prefill[0].devices"]),
    ("bad-policy", edit("host_key_policy: strict", "host_key_policy: yolo"),
     ["ssh.host_key_policy", "'yolo'"]),
]


@pytest.mark.parametrize(("text", "needles"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_bad_spec_names_the_key(text: str, needles: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="pd.yaml")
    err = info.value
    assert len(err.problems) == 1, err.problems
    line = err.problems[0]
    assert "\n" not in line
    for needle in needles:
        assert needle in line, (needle, line)


@pytest.mark.parametrize("case", CORPUS[:8], ids=[c[0] for c in CORPUS[:8]])
def test_cli_bad_spec_exit_2_no_traceback(tmp_path: Path, case: tuple[str, str, list[str]]) -> None:
    spec = tmp_path / "pd.yaml"
    spec.write_text(case[1])
    result = CliRunner().invoke(cli, ["validate", "-c", str(spec)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    assert case[2][0] in result.output
    assert "Hint:" in result.output


def test_many_problems_reported_together() -> None:
    text = edit("    tp: 8\n", "    tpp: 8\n", edit("hardware: a2", "hardware: a9"))
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert len(info.value.problems) == 2
    assert "2 problems" in info.value.message


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "-c", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read spec" in result.output
