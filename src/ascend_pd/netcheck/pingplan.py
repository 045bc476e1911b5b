"""Which Prefill↔Decode device pairs to ping, and the pairs excluded by design.

Modes (``--ping``):

- ``full``: every prefill device pings every decode device, and every decode device pings every
  prefill device back. Right for small clusters; the default while P×D ≤ 1024 pairs.
- ``plane``: only same-position pairs: the k-th device of every prefill host with the k-th
  device of every decode host (each host's devices of that role, in order). In the usual layout
  that is device i ↔ device i, and devices with the same index sit on the same network plane in
  every documented addressing scheme, so this covers each plane and each host pair with the
  fewest pings. Counting positions instead of raw ids keeps every device in the plan when P and
  D use different devices (1P1D on one host: 0↔4, 1↔5, …); when one side has more devices, the
  positions wrap around the smaller side (P 0-3 with D 0-7: 0↔0, 0↔4, 1↔1, 1↔5, …).
- ``sample:N``: the ``plane`` pairs plus N more pairs drawn at random (seeded, so a re-run checks
  the same pairs) from the rest of the matrix, both directions. ``auto`` on a large cluster is
  ``sample:256``.

The two dies of one A3 card never reach each other over RoCE (by design), so when the pings
go over RoCE such pairs are listed as excluded, not pinged and never reported as faults. HCCS
pings (``-hccs_ping`` to vNIC addresses) have no such exclusion.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, Literal

from ascend_pd.errors import UsageError

FULL_LIMIT: Final[int] = 1024
AUTO_SAMPLE: Final[int] = 256


@dataclass(frozen=True)
class Endpoint:
    host: str
    device: int
    role: Literal["prefill", "decode"]


@dataclass(frozen=True)
class PingPair:
    src: Endpoint
    dst: Endpoint


@dataclass(frozen=True)
class PingPlan:
    mode: str
    pairs: list[PingPair]
    excluded: list[tuple[PingPair, str]]


def parse_mode(text: str) -> tuple[str, int]:
    """``full`` | ``plane`` | ``sample:N`` | ``auto`` -> (mode, N)."""
    if text in ("full", "plane", "auto"):
        return text, 0
    if text.startswith("sample:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = -1
        if n >= 0:
            return "sample", n
    raise UsageError(f"unknown ping plan '{text}'", hint="use full, plane, sample:N or auto")


def _positions(
    endpoints: list[Endpoint],
) -> tuple[dict[Endpoint, int], dict[tuple[str, str], int]]:
    """Each endpoint's index among its host's devices of the same role, and those counts."""
    groups: dict[tuple[str, str], list[Endpoint]] = {}
    for ep in endpoints:
        groups.setdefault((ep.host, ep.role), []).append(ep)
    pos = {ep: i for group in groups.values()
           for i, ep in enumerate(sorted(group, key=lambda e: e.device))}
    return pos, {key: len(group) for key, group in groups.items()}


def _by_design(a: Endpoint, b: Endpoint, soc: str, transport: str) -> str | None:
    if soc == "a3" and transport == "roce" and a.host == b.host and a.device // 2 == b.device // 2:
        return f"dies {a.device} and {b.device} of one A3 card do not reach each other over RoCE"
    return None


def plan_pings(
    prefill: list[Endpoint], decode: list[Endpoint], mode_text: str = "auto", *,
    soc: str = "a2", seed: int = 0, transport: Literal["roce", "hccs"] = "roce",
) -> PingPlan:
    """Build the directed ping list for ``mode_text`` (see the module docstring).

    Args:
        prefill: prefill endpoints, in report order.
        decode: decode endpoints, in report order.
        mode_text: ``full``, ``plane``, ``sample:N`` or ``auto``.
        soc: ``a2`` or ``a3`` (A3 die pairs are excluded over RoCE).
        seed: the sample's seed (the same seed picks the same pairs).
        transport: ``roce`` (``-ping`` to RoCE IPs) or ``hccs`` (``-hccs_ping`` to vNIC IPs).
    """
    mode, n = parse_mode(mode_text)
    if mode == "auto":
        small = len(prefill) * len(decode) <= FULL_LIMIT
        mode, n = ("full", 0) if small else ("sample", AUTO_SAMPLE)
    matrix = [(p, d) for p in prefill for d in decode]
    if mode == "full":
        chosen = matrix
    else:
        pos, count = _positions(prefill + decode)

        def same_plane(p: Endpoint, d: Endpoint) -> bool:
            # Positions wrap around the smaller side, so every device is in some pair.
            return pos[p] % count[(d.host, d.role)] == pos[d] % count[(p.host, p.role)]

        chosen = [(p, d) for p, d in matrix if same_plane(p, d)]
        if mode == "sample":
            rest = [(p, d) for p, d in matrix if not same_plane(p, d)]
            chosen += random.Random(seed).sample(rest, min(n, len(rest)))
    pairs: list[PingPair] = []
    excluded: list[tuple[PingPair, str]] = []
    for p, d in chosen:
        for pair in (PingPair(p, d), PingPair(d, p)):
            reason = _by_design(pair.src, pair.dst, soc, transport)
            if reason:
                excluded.append((pair, reason))
            else:
                pairs.append(pair)
    label = mode if mode != "sample" else f"sample:{n}"
    return PingPlan(label, pairs, excluded)
