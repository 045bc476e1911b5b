"""A3 super pods: ``npu-smi info -t spod-info`` must agree across the hosts that exchange KV.

On Atlas A3 (910_93) Mooncake moves KV over HCCS inside a super pod; upstream's multi-node
P/D guide (vllm-ascend ``tutorials/features/pd_disaggregation_mooncake_multi_node.md``,
"Verify Multi-Node Communication Environment") reads each die's super pod id and SDID with
``npu-smi info -t spod-info -i CARD -c CHIP``. The checks here:

* every die of one host reports the same Super Pod ID (else the host is miswired/misconfigured);
* prefill and decode hosts share one Super Pod ID (a fault over the ``hccs`` transport, which
  cannot cross super pods; a warning over RoCE, where KV then leaves the HCCS fabric);
* no two hosts of one super pod report the same Server Index (their SDIDs would collide).

A3 device ids are ``2 * card + die`` (the SDID layout, ``npusmi.soc``), so die ``d`` is card
``d // 2``, chip ``d % 2``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from ascend_pd.errors import AscendPDError
from ascend_pd.findings import Finding
from ascend_pd.netcheck.report import device_finding
from ascend_pd.netcheck.targets import Targets
from ascend_pd.npusmi import commands as smi_commands
from ascend_pd.npusmi.client import parse_smi_outcome
from ascend_pd.npusmi.parse import SpodInfo, parse_spod
from ascend_pd.runners.fanout import Job, Outcome

CHECK = "spod"


def spod_jobs(targets: Targets, npu_smi: Callable[[str], str], timeout: float,
              skip: set[str]) -> list[Job]:
    """One ``spod-info`` query per target die (hosts in ``skip`` are unreachable)."""
    return [Job(h.name, smi_commands.spod_info(npu_smi(h.name), dev // 2, dev % 2),
                key=(h.name, dev), timeout=timeout)
            for h in targets.hosts if h.name not in skip for dev in targets.devices(h.name)]


def evaluate_spod(targets: Targets, outcomes: list[Outcome], transport: str
                  ) -> tuple[list[Finding], int]:
    """Findings and the number of dies evaluated."""
    findings: list[Finding] = []
    infos: dict[str, dict[int, SpodInfo]] = defaultdict(dict)
    for outcome in outcomes:
        host: str = outcome.job.host
        dev = int(outcome.job.key[1])  # type: ignore[index]
        try:
            info = parse_smi_outcome(outcome, parse_spod)
        except AscendPDError as exc:
            findings.append(device_finding(
                host, dev, CHECK, f"spod-info: {exc.message}", "Super Pod ID and SDID",
                exc.hint or "check npu-smi on the host (`npu-smi info -t spod-info`)"))
            continue
        if info.supported:
            infos[host][dev] = info
    pods: dict[str, int] = {}
    for host, by_dev in infos.items():
        ids = {i.super_pod_id for i in by_dev.values()}
        if len(ids) > 1:
            detail = ", ".join(f"die {d}: {i.super_pod_id}" for d, i in sorted(by_dev.items()))
            findings.append(device_finding(host, None, CHECK,
                                    f"dies report different Super Pod IDs ({detail})",
                                    "one Super Pod ID per host",
                                    "Check the host's super pod configuration with the "
                                    "`npu-smi info -t spod-info -i <card> -c <chip>` of each die."))
        else:
            pod = next(iter(ids), None)
            if pod is not None:
                pods[host] = pod
    roles = {h.name: {s.role for s in targets.slots if s.host == h.name} for h in targets.hosts}
    kv_hosts = [h for h in pods if roles.get(h)]
    if len({pods[h] for h in kv_hosts}) > 1:
        by_pod = ", ".join(f"{h}: {pods[h]}" for h in kv_hosts)
        for host in kv_hosts:
            findings.append(device_finding(
                host, None, CHECK,
                f"Super Pod ID {pods[host]}; the hosts exchanging KV report {by_pod}",
                "every prefill and decode host in one super pod",
                "Place prefill and decode in one super pod, or use the RoCE transport "
                "(`--transport roce`) knowing KV then leaves the HCCS fabric.",
                warning=transport != "hccs"))
    seen: dict[tuple[int, int], str] = {}
    for host in kv_hosts:
        index = next((i.server_index for i in infos[host].values()
                      if i.server_index is not None), None)
        if index is None:
            continue
        other = seen.setdefault((pods[host], index), host)
        if other != host:
            findings.append(device_finding(host, None, CHECK,
                                    f"Server Index {index} in super pod {pods[host]} is also "
                                    f"{other}'s", "a distinct Server Index per host of a pod",
                                    "Fix the super pod's server index assignment (SDIDs "
                                    "would collide)."))
    return findings, sum(len(v) for v in infos.values())
