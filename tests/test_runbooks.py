"""Run the runbooks in docs/runbooks/ against the simulated cluster of ``ascend-pd demo``.

Every ```console block holds ``$ ascend-pd ...`` lines, each followed by its expected
output. A trailing ``# exit: N`` comment on the command gives the expected exit code
(default 0). In expected output, a line ``...`` matches any number of lines and ``<...>``
matches any text within a line; runs of spaces compare equal (table widths vary).

Spec edits: a ```yaml file=NAME block is written to NAME as it stands; a ```yaml edit=NAME
block replaces the top-level sections it names in NAME and keeps the others (what an
operator does by hand). In both, ``${VAR}`` is a port picked for this run:
``PREFILL_PORT``, ``DECODE_PORT``, ``PROXY_PORT`` (the spec's), ``DECODE1_PORT`` (free on
node-d, for an instance a runbook adds).

The blocks of one runbook run in order, in one workspace: the demo's two simulated hosts
(node-p 127.0.0.2, node-d 127.0.0.3) with the stand-in hccn_tool / npu-smi, a spec whose
``sim:`` section makes launch start simulated vLLM servers and the proxy, and the doctor's
simulated host tree (``ASCEND_PD_SYSROOT``) in which both addresses are on ``lo``. Each
runbook starts from the state its prerequisites leave (:data:`START`). Whatever a runbook
started is stopped when the module ends, even when a step failed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from ascend_pd.demo.setup import HOSTS, build_world, free_port
from ascend_pd.doctor.simroot import build_sysroot
from ascend_pd.releases import newest_stable
from ascend_pd.sim.faults import apply_fault

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = ROOT / "docs" / "runbooks"
DIAGNOSE_DATA = Path(__file__).resolve().parent / "data" / "diagnose"

#: The state each runbook starts from (what its prerequisites leave behind):
#: ``new`` = hosts as delivered (the demo's TLS fault on node-d device 3 still there);
#: ``preflighted`` = preflight done (TLS fixed); ``running`` = first deployment done;
#: ``failed-decode`` = deployed, but the decode died at start-up with EI0016 (its log is the
#: sample ``tls-inconsistent.log``, which names the device 3 the TLS fault is on), so only
#: prefill runs: what a failed ``launch --role all`` leaves.
START: Final[dict[str, str]] = {
    "new-cluster-preflight.md": "new",
    "first-deployment.md": "preflighted",
    "scaling.md": "running",
    "rolling-restart-and-rollback.md": "running",
    "troubleshooting.md": "failed-decode",
}

#: Logs copied off hosts, for the troubleshooting runbook's `diagnose FILE` examples.
SAVED_LOGS: Final[tuple[str, ...]] = ("hccl-if-ip-not-local.log", "port-in-use.log")

_BLOCK = re.compile(r"^```(console|yaml (file|edit)=(\S+))\n(.*?)^```", re.M | re.S)
_STEP_TIMEOUT_S: Final[float] = 120.0


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
    #: (mode, name, content) of a yaml block; mode is "file" or "edit"
    yaml: tuple[str, str, str] | None = None


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
            blocks.append(Block(path.name, i, line, yaml=(m.group(2), m.group(3), m.group(4))))
        else:
            blocks.append(Block(path.name, i, line, steps=parse_console(m.group(4))))
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


class _NoAliases(yaml.SafeDumper):
    """Write every list out in full: an operator reads and edits this spec."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(spec: dict[str, Any]) -> str:
    return yaml.dump(spec, Dumper=_NoAliases, sort_keys=False, default_flow_style=None)


@dataclass
class Workspace:
    """One runbook's world: directory, environment, ``${VAR}`` values, failures so far."""

    runbook: str
    work: Path
    env: dict[str, str]
    values: dict[str, str]
    failed_at: int | None = None

    def run(self, args: list[str] | tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ascend_pd", *args], cwd=self.work,
                              env=self.env, capture_output=True, text=True,
                              timeout=_STEP_TIMEOUT_S, check=False)

    def setup_step(self, *args: str) -> None:
        proc = self.run(args)
        if proc.returncode != 0:
            raise AssertionError(f"{self.runbook} start state: `ascend-pd {shlex.join(args)}` "
                                 f"exited {proc.returncode}\n{proc.stdout}{proc.stderr}")


def build_workspace(runbook: str, work: Path) -> Workspace:
    """The demo's world with TP4 instances (devices 4-7 stay free to scale into)."""
    world = build_world(work)
    spec = yaml.safe_load(world.spec_path.read_text(encoding="utf-8"))
    for inst in spec["prefill"] + spec["decode"]:
        inst["devices"], inst["tp"] = [0, 1, 2, 3], 4
    # The runbooks show the flow for today's release: Mooncake, no rank table.
    spec["connector"] = {"type": "mooncake", "vllm_ascend_version": newest_stable()}
    world.spec_path.write_text(
        "# The simulated 2-host Atlas A2 cluster of `ascend-pd demo` (instances at TP4).\n"
        + _dump(spec), encoding="utf-8")
    used = set(world.ports.values())
    decode1 = free_port(HOSTS[1][1], used)

    # The doctor and diagnose read host files under the sysroot; launch writes logs to
    # state_dir itself. One directory seen from both sides keeps them in agreement.
    state = Path(spec["state_dir"])
    state.mkdir(parents=True, exist_ok=True)
    inside = work / "sysroot" / state.relative_to("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.symlink_to(state, target_is_directory=True)
    host = build_sysroot(work / "sysroot", model_path=spec["model"]["path"], w8a8=False,
                         release=spec["connector"]["vllm_ascend_version"],
                         nics={"lo": ["127.0.0.1/8"] + [f"{a}/8" for _n, a in HOSTS]},
                         state_dir=str(state))
    env = {**os.environ, **host.env}
    for var in ("ASCEND_PD_CONFIG", "ASCEND_PD_BACKEND", "HCCN_TOOL_PATH",
                "ASCEND_PD_SIM_CLUSTER", "ASCEND_PD_SIM_HOST"):
        env.pop(var, None)
    values = {"PREFILL_PORT": world.ports["prefill"], "DECODE_PORT": world.ports["decode"],
              "PROXY_PORT": world.ports["proxy"], "DECODE1_PORT": decode1}
    ws = Workspace(runbook, work, env, {k: str(v) for k, v in values.items()})

    start = START[runbook]
    if start != "new" and start != "failed-decode":
        apply_fault(world.cluster_path, "node-d", "tls-on", device=3, clear=True)
    if start in ("running", "failed-decode"):
        ws.setup_step("render", "-c", "pd.yaml")
    if start == "running":
        ws.setup_step("launch", "-c", "pd.yaml", "--role", "all", "--timeout", "60")
    if start == "failed-decode":
        # What a failed `launch --role all` leaves: prefill up, decode dead, no proxy.
        ws.setup_step("launch", "-c", "pd.yaml", "--role", "prefill", "--timeout", "60")
        (state / "logs").mkdir(parents=True, exist_ok=True)
        (state / "logs/decode-0@node-d.log").write_text(
            "=== ascend-pd start decode-0@node-d 2025-11-20T09:15:31Z ===\n"
            + (DIAGNOSE_DATA / "tls-inconsistent.log").read_text(encoding="utf-8"),
            encoding="utf-8")
        saved = work / "saved-logs"
        saved.mkdir()
        for name in SAVED_LOGS:
            shutil.copy(DIAGNOSE_DATA / name, saved / name)
    return ws


def stop_everything(ws: Workspace) -> None:
    """Stop what the spec names, then any unit whose pid file is still there."""
    if not (ws.work / "pd.yaml").is_file():
        return
    try:
        ws.run(["stop", "-c", "pd.yaml", "--grace", "2"])
    except subprocess.TimeoutExpired:
        pass
    spec = yaml.safe_load((ws.work / "pd.yaml").read_text(encoding="utf-8"))
    # A step may have edited pd.yaml after starting something the new spec no longer names.
    for pid_file in Path(spec["state_dir"], "run").glob("*.pid"):
        try:
            os.killpg(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            pass


def _collect() -> list[Any]:
    return [pytest.param(block, id=f"{path.stem}:{block.line}")
            for path in sorted(RUNBOOKS.glob("*.md")) for block in load_blocks(path)]


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Workspace]]:
    """One workspace per runbook, shared by its blocks (they run in document order)."""
    cache: dict[str, Workspace] = {}
    try:
        yield cache
    finally:
        for ws in cache.values():
            stop_everything(ws)


def _workspace(runbook: str, cache: dict[str, Workspace],
               factory: pytest.TempPathFactory) -> Workspace:
    if runbook not in cache:
        work = factory.mktemp(Path(runbook).stem)
        # Registered before it starts anything, so the finalizer stops a half-built world
        # and the runbook's blocks skip if building it fails.
        cache[runbook] = Workspace(runbook, work, dict(os.environ), {}, failed_at=0)
        cache[runbook] = build_workspace(runbook, work)
    return cache[runbook]


def _write_yaml(ws: Workspace, mode: str, name: str, content: str) -> None:
    text = string.Template(content).substitute(ws.values)
    target = ws.work / name
    if mode == "file":
        target.write_text(text, encoding="utf-8")
        return
    spec = yaml.safe_load(target.read_text(encoding="utf-8"))
    spec.update(yaml.safe_load(text))
    target.write_text(_dump(spec), encoding="utf-8")


def test_runbooks_exist_and_have_commands() -> None:
    names = {p.name for p in RUNBOOKS.glob("*.md")}
    assert names == set(START), "every runbook needs a start state in START"
    for name in names:
        steps = [s for b in load_blocks(RUNBOOKS / name) for s in b.steps]
        assert steps, f"{name} has no ```console steps"
        assert all(s.argv[0] == "ascend-pd" for s in steps), name
        # Nothing a runbook starts may outlive it.
        assert steps[-1].argv == ("ascend-pd", "stop", "-c", "pd.yaml"), name


def test_expected_output_matcher() -> None:
    assert output_matches(("a  b", "...", "z <...> end"), ["a b", "x", "y", "z 12 GiB end"])
    assert not output_matches(("a",), ["a", "b"])
    assert output_matches(("...",), [])


@pytest.mark.slow  # about two minutes for all runbooks on 2 cores, mostly check-links
@pytest.mark.parametrize("block", _collect())
def test_runbook_block(block: Block, workspaces: dict[str, Workspace],
                       tmp_path_factory: pytest.TempPathFactory) -> None:
    ws = _workspace(block.runbook, workspaces, tmp_path_factory)
    if ws.failed_at is not None:
        pytest.skip(f"an earlier block of {block.runbook} (line {ws.failed_at}; 0 = its start "
                    "state) failed, and this block depends on the state it leaves")
    ws.failed_at = block.line
    if block.yaml is not None:
        _write_yaml(ws, *block.yaml)
    for step in block.steps:
        proc = ws.run(step.argv[1:])
        actual = (proc.stdout + proc.stderr).splitlines()
        shown = "\n".join(actual)
        assert proc.returncode == step.exit_code, (
            f"{block.runbook}:{block.line}: `{shlex.join(step.argv)}` exited "
            f"{proc.returncode}, expected {step.exit_code}\n{shown}")
        assert output_matches(step.expected, actual), (
            f"{block.runbook}:{block.line}: `{shlex.join(step.argv)}` printed\n{shown}\n"
            "expected\n" + "\n".join(step.expected))
    ws.failed_at = None
