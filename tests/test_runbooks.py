"""Run the runbooks in docs/runbooks/ against a simulated cluster.

Every ```console block holds ``$ ascend-pd ...`` lines, each followed by its expected
output. A trailing ``# exit: N`` comment on the command gives the expected exit code
(default 0). In expected output, a line ``...`` matches any number of lines and ``<...>``
matches any text within a line; runs of spaces compare equal (table widths vary).
A ```yaml file=NAME block is written to NAME in the workspace (a spec after an edit).

The blocks of one runbook run in order in one workspace: a directory holding pd.yaml and a
simulated host tree (``ASCEND_PD_SYSROOT``), with ``ASCEND_PD_BACKEND=local`` so every
spec host is this machine. Blocks that use a command not merged in this branch are
expected to fail (strict xfail): flip PENDING when the command lands.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ascend_pd.doctor.simroot import build_sysroot

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = ROOT / "docs" / "runbooks"
DIAGNOSE_DATA = Path(__file__).resolve().parent / "data" / "diagnose"

#: Commands built on other branches; their blocks are xfail until the lead flips this.
PENDING = frozenset({"gen-ranktable", "launch", "status", "stop",
                     "logs"})

_BLOCK = re.compile(r"^```(console|yaml file=(\S+))\n(.*?)^```", re.M | re.S)


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...]
    exit_code: int
    expected: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    runbook: str
    index: int
    line: int
    steps: tuple[Step, ...] = ()
    file: tuple[str, str] | None = None

    @property
    def pending(self) -> list[str]:
        return sorted({s.argv[1] for s in self.steps if len(s.argv) > 1} & PENDING)


def parse_console(text: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    command: str | None = None
    expected: list[str] = []

    def flush() -> None:
        if command is None:
            return
        code = 0
        match = re.search(r"\s+#\s*exit:\s*(\d+)\s*$", command)
        body = command[: match.start()] if match else command
        if match:
            code = int(match.group(1))
        steps.append(Step(tuple(shlex.split(body)), code, tuple(expected)))

    for line in text.splitlines():
        if line.startswith("$ "):
            flush()
            command, expected = line[2:], []
        else:
            expected.append(line)
    flush()
    return tuple(steps)


def load_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    blocks = []
    for i, m in enumerate(_BLOCK.finditer(text)):
        line = text.count("\n", 0, m.start()) + 1
        if m.group(2):
            blocks.append(Block(path.name, i, line, file=(m.group(2), m.group(3))))
        else:
            blocks.append(Block(path.name, i, line, steps=parse_console(m.group(3))))
    return blocks


def _norm(line: str) -> str:
    return " ".join(line.split())


def output_matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    """Ordered match with ``...`` (any lines) and ``<...>`` (any text in a line)."""
    exp = [_norm(e) for e in expected if e.strip()]
    act = [_norm(a) for a in actual if a.strip()]

    def line_ok(e: str, a: str) -> bool:
        pattern = ".*".join(re.escape(part) for part in e.split("<...>"))
        return re.fullmatch(pattern, a) is not None

    def match(i: int, j: int) -> bool:
        if i == len(exp):
            return j == len(act)
        if exp[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(act) + 1))
        return j < len(act) and line_ok(exp[i], act[j]) and match(i + 1, j + 1)

    return match(0, 0)


def _collect() -> list[object]:
    params = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for block in load_blocks(path):
            marks = []
            if block.pending:
                marks.append(pytest.mark.xfail(reason="command not merged yet", strict=True))
            params.append(pytest.param(block, id=f"{path.stem}:{block.line}", marks=marks))
    return params


@pytest.fixture(scope="module")
def workspaces() -> dict[str, tuple[Path, dict[str, str]]]:
    """One workspace per runbook, shared by its blocks (they run in document order)."""
    return {}


def _workspace(runbook: str, cache: dict[str, tuple[Path, dict[str, str]]],
               factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    if runbook in cache:
        return cache[runbook]
    work = factory.mktemp(Path(runbook).stem)
    # One simulated host tree serves every spec host: all addresses sit on its eth0.
    host = build_sysroot(work / "sysroot", model_path="/models/Qwen3-8B", w8a8=False,
                         nics={"eth0": ["192.0.2.11/24", "192.0.2.12/24", "192.0.2.13/24"]})
    logs = host.root / "var/lib/ascend-pd/logs"
    logs.mkdir(parents=True, exist_ok=True)
    # The troubleshooting runbook reads this decode log through `diagnose --host`.
    shutil.copy(DIAGNOSE_DATA / "tls-inconsistent.log", logs / "decode-0@node0.log")
    env = {**os.environ, **host.env, "ASCEND_PD_BACKEND": "local"}
    for var in ("ASCEND_PD_CONFIG", "HCCN_TOOL_PATH"):
        env.pop(var, None)
    text = (RUNBOOKS / runbook).read_text(encoding="utf-8")
    if "$ ascend-pd init" not in text and "file=pd.yaml" not in text:
        # Runbooks for a running deployment start from the preflight's spec.
        subprocess.run([sys.executable, "-m", "ascend_pd", "init", "--shape", "a2-1p1d-single",
                        "-o", "pd.yaml"], cwd=work, env=env, check=True, timeout=60,
                       capture_output=True)
    cache[runbook] = (work, env)
    return cache[runbook]


def test_runbooks_exist_and_have_commands() -> None:
    names = {p.name for p in RUNBOOKS.glob("*.md")}
    assert {"new-cluster-preflight.md", "first-deployment.md", "scaling.md",
            "rolling-restart-and-rollback.md", "troubleshooting.md"} <= names
    for name in names:
        steps = [s for b in load_blocks(RUNBOOKS / name) for s in b.steps]
        assert steps, f"{name} has no ```console steps"
        assert all(s.argv[0] == "ascend-pd" for s in steps), name


def test_expected_output_matcher() -> None:
    assert output_matches(("a  b", "...", "z <...> end"), ["a b", "x", "y", "z 12 GiB end"])
    assert not output_matches(("a",), ["a", "b"])
    assert output_matches(("...",), [])


@pytest.mark.parametrize("block", _collect())
def test_runbook_block(block: Block, workspaces: dict[str, tuple[Path, dict[str, str]]],
                       tmp_path_factory: pytest.TempPathFactory) -> None:
    work, env = _workspace(block.runbook, workspaces, tmp_path_factory)
    if block.file is not None:
        name, content = block.file
        (work / name).write_text(content, encoding="utf-8")
        return
    for step in block.steps:
        proc = subprocess.run([sys.executable, "-m", "ascend_pd", *step.argv[1:]], cwd=work,
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        actual = (proc.stdout + proc.stderr).splitlines()
        shown = "\n".join(actual)
        assert proc.returncode == step.exit_code, (
            f"{block.runbook}:{block.line}: `{shlex.join(step.argv)}` exited "
            f"{proc.returncode}, expected {step.exit_code}\n{shown}")
        assert output_matches(step.expected, actual), (
            f"{block.runbook}:{block.line}: `{shlex.join(step.argv)}` printed\n{shown}\n"
            "expected\n" + "\n".join(step.expected))
