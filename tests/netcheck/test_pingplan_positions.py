"""The `plane` plan pairs devices by position, so P and D on different devices still ping."""

from __future__ import annotations

from ascend_pd.netcheck.pingplan import Endpoint, plan_pings


def test_plane_on_one_host_pairs_by_position() -> None:
    prefill = [Endpoint("node0", d, "prefill") for d in range(4)]
    decode = [Endpoint("node0", d, "decode") for d in range(4, 8)]
    plan = plan_pings(prefill, decode, "plane")
    forward = sorted((p.src.device, p.dst.device) for p in plan.pairs if p.src.role == "prefill")
    assert forward == [(0, 4), (1, 5), (2, 6), (3, 7)]
    assert len(plan.pairs) == 8


def test_plane_across_hosts_is_same_index() -> None:
    prefill = [Endpoint(h, d, "prefill") for h in ("p0", "p1") for d in range(8)]
    decode = [Endpoint("d0", d, "decode") for d in range(8)]
    plan = plan_pings(prefill, decode, "plane")
    assert all(p.src.device == p.dst.device for p in plan.pairs)
    assert len(plan.pairs) == 2 * 8 * 2


def test_plane_wraps_so_every_device_is_pinged() -> None:
    prefill = [Endpoint("p0", d, "prefill") for d in range(4)]
    decode = [Endpoint("d0", d, "decode") for d in range(8)]
    plan = plan_pings(prefill, decode, "plane")
    forward = sorted((p.src.device, p.dst.device) for p in plan.pairs if p.src.role == "prefill")
    assert forward == [(0, 0), (0, 4), (1, 1), (1, 5), (2, 2), (2, 6), (3, 3), (3, 7)]
