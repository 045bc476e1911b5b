"""`ascend-pd diagnose` as a user runs it: files, JSON, exit codes, logs on a host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "diagnose"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ascend_pd", "diagnose", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


def test_matches_are_printed_with_file_line_cause_fix_and_check() -> None:
    log = DATA / "llm-link-failed.log"
    proc = run(str(log), str(DATA / "clean.log"))
    assert proc.returncode == 1, proc.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines, 1) if "Create Dest error" in line)
    assert f"{log}:{first} llm-link-failed: FOUND: " in proc.stdout
    assert "cause: " in proc.stdout
    assert "fix: " in proc.stdout
    assert "check: ascend-pd check-links -c pd.yaml" in proc.stdout
    assert "1 known problem(s) found in 2 log(s)" in proc.stdout


def test_clean_log_exits_zero() -> None:
    proc = run(str(DATA / "clean.log"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no known problem found in 1 log(s)" in proc.stdout


def test_json_envelope_lists_matches() -> None:
    proc = run("--json", str(DATA / "npu-out-of-memory.log"))
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert (doc["command"], doc["status"]) == ("diagnose", "findings")
    (match,) = doc["data"]["findings"]
    assert match["check"] == "npu-out-of-memory"
    assert match["verify"] == "ascend-pd doctor -c pd.yaml --all"
    assert "NPU out of memory" in match["evidence"][0]


def test_nothing_to_diagnose_is_a_usage_error() -> None:
    proc = run()
    assert proc.returncode == 2
    assert "Hint:" in proc.stderr


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    proc = run(str(tmp_path / "nope.log"))
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr


SPEC = """\
version: 1
name: diag
state_dir: "{root}/var/lib/ascend-pd"
hosts:
  - name: node0
    address: 127.0.0.1
model: {{path: /models/m, served_name: m}}
prefill:
  - {{name: prefill-0, hosts: [node0], devices: [0, 1, 2, 3], tp: 4, port: 8100}}
decode:
  - {{name: decode-0, hosts: [node0], devices: [4, 5, 6, 7], tp: 4, port: 8200}}
"""


def test_reads_an_instance_log_on_a_host_through_the_runner(tmp_path: Path) -> None:
    root = tmp_path / "root"
    logs = root / "var/lib/ascend-pd/logs"
    logs.mkdir(parents=True)
    (logs / "decode-0@node0.log").write_text(
        (DATA / "tls-inconsistent.log").read_text(encoding="utf-8"), encoding="utf-8")
    spec = tmp_path / "pd.yaml"
    spec.write_text(SPEC.format(root=root), encoding="utf-8")
    proc = run("--host", "node0", "--role", "decode", "-c", str(spec), "--backend", "local",
               "--json")
    assert proc.returncode == 1, proc.stderr
    (match,) = json.loads(proc.stdout)["data"]["findings"]
    assert (match["check"], match["where"]["file"]) == ("tls-inconsistent", "decode-0@node0")


def test_only_the_latest_start_of_an_instance_is_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    logs = root / "var/lib/ascend-pd/logs"
    logs.mkdir(parents=True)
    failed = (DATA / "tls-inconsistent.log").read_text(encoding="utf-8")
    clean = (DATA / "clean.log").read_text(encoding="utf-8")
    (logs / "decode-0@node0.log").write_text(
        "=== ascend-pd start decode-0@node0 2026-11-21T01:00:00Z ===\n" + failed
        + "=== ascend-pd start decode-0@node0 2026-11-21T02:00:00Z ===\n" + clean,
        encoding="utf-8")
    spec = tmp_path / "pd.yaml"
    spec.write_text(SPEC.format(root=root), encoding="utf-8")
    proc = run("--host", "node0", "--role", "decode", "-c", str(spec), "--backend", "local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no known problem found" in proc.stdout


def test_instance_log_not_there_says_to_launch(tmp_path: Path) -> None:
    spec = tmp_path / "pd.yaml"
    spec.write_text(SPEC.format(root=tmp_path / "empty"), encoding="utf-8")
    proc = run("--host", "node0", "--role", "prefill", "-c", str(spec), "--backend", "local")
    assert proc.returncode == 3
    assert "prefill-0@node0.log" in proc.stderr
    assert "ascend-pd launch" in proc.stderr
