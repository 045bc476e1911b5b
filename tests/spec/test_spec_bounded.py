"""Spec loading is bounded and strict: hostile or sloppy files fail fast with a SpecError
(exit 2, the --json envelope), never hang, fill memory, or validate something else."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.errors import SpecError
from ascend_pd.examples import example_spec
from ascend_pd.spec import load_spec, parse_spec
from ascend_pd.spec.loader import MAX_SPEC_BYTES

BASE = example_spec("a2-1p1d")

#: 2 KB that expands to 9**9 (387 million) strings when walked.
ALIAS_BOMB = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]\n"
    for p, n in zip("abcdefgh", "bcdefghi", strict=True))


def validate_json(path: str | Path) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["validate", "-c", str(path), "--json"])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.output)


def only_error(doc: dict[str, object]) -> str:
    errors = doc["errors"]
    assert isinstance(errors, list) and len(errors) == 1
    return str(errors[0]["message"])


def test_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 2048
    path = tmp_path / "bomb.yaml"
    path.write_text(BASE + ALIAS_BOMB.replace("a:", "zz_a:", 1))
    # Run in a thread so that a regression (minutes, GBs) fails the test instead of the host.
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(validate_json(path)), daemon=True)
    worker.start()
    worker.join(60)
    assert outcome, "the alias bomb was still being expanded after 60 s"
    code, doc = outcome[0]  # type: ignore[misc]
    assert code == 2
    assert "expands to more than" in only_error(doc)


def test_one_level_of_anchors_still_works() -> None:
    text = BASE.replace("    port: 8100\n", "    port: 8100\n    omp_num_threads: &n 7\n", 1)
    text = text.replace("    port: 8200\n", "    port: 8200\n    omp_num_threads: *n\n", 1)
    spec = parse_spec(text)
    assert spec.prefill[0].omp_num_threads == spec.decode[0].omp_num_threads == 7


def test_a_device_is_refused_not_read(tmp_path: Path) -> None:
    code, doc = validate_json("/dev/zero")
    assert code == 2 and "not a regular file" in only_error(doc)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.fifo"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file"):
        load_spec(fifo)  # opening a FIFO for reading blocks until a writer comes


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "#" * MAX_SPEC_BYTES + "\n")
    with pytest.raises(SpecError, match="byte limit"):
        load_spec(path)


def test_non_utf8_is_a_spec_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.encode().replace(b"name: ", b"name: caf\xe9-", 1))
    code, doc = validate_json(path)
    assert code == 2
    assert "is not UTF-8" in only_error(doc) and "line " in only_error(doc)


def test_a_repeated_key_is_an_error_not_silently_dropped() -> None:
    dup = BASE + "decode:\n  - {name: d9, hosts: [node-d], devices: [0], port: 9000}\n"
    with pytest.raises(SpecError) as info:
        parse_spec(dup)
    line = BASE.splitlines().index("decode:") + 1
    assert f"key 'decode' repeats the one on line {line}" in info.value.problems[0]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("    port: 8100\n", "    port: true\n", "prefill[0].port"),
    ("    dp: 1\n", "    dp: yes\n", "prefill[0].dp"),  # YAML 1.1: yes is True, lax: 1
    ("    port: 8200\n", "    port: '8200'\n", "decode[0].port"),
    ("address: 192.0.2.11", "address: 999.0.2.11", "'999.0.2.11' is not an IPv4 or IPv6"),
    ("address: 192.0.2.11", "address: node-p.example", "hosts[0].address"),
])
def test_strict_types_and_addresses(old: str, new: str, expected: str) -> None:
    assert old in BASE
    with pytest.raises(SpecError) as info:
        parse_spec(BASE.replace(old, new, 1))
    assert expected in info.value.problems[0]


def test_ipv6_addresses_are_accepted() -> None:
    spec = parse_spec(BASE.replace("address: 192.0.2.11", "address: 2001:db8::11", 1))
    assert spec.hosts[0].address == "2001:db8::11"


@pytest.mark.parametrize("value", ["''", "relative/state"])
def test_state_dir_must_be_an_absolute_path(value: str) -> None:
    with pytest.raises(SpecError, match="state_dir .*is not an absolute path"):
        parse_spec(BASE + f"state_dir: {value}\n")
