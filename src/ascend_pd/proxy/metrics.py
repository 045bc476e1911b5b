"""Prometheus counters and histograms for the proxy, rendered as text exposition 0.0.4.

Hand-rolled (a few dict updates per request) rather than a client library: the proxy's hot
path is the budget, and the label sets are small and known. Gauges (in-flight, outstanding
tokens, healthy) are read from the pools when ``/metrics`` is scraped.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ascend_pd.proxy.balancer import Pool

Labels = tuple[tuple[str, str], ...]
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0, 120.0, 300.0)


def _fmt(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{v}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value
        self.n += 1


@dataclass
class ProxyMetrics:
    """All proxy metrics; methods are called from the request path."""

    counters: dict[str, dict[Labels, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float)))
    histograms: dict[str, dict[Labels, Histogram]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Histogram)))

    HELP = {
        "ascend_pd_proxy_requests_total": "Legs sent to a backend, by role and backend.",
        "ascend_pd_proxy_errors_total": "Failed legs (connect, timeout, 5xx, 4xx, mid-stream).",
        "ascend_pd_proxy_client_requests_total": "Client requests by endpoint and status.",
        "ascend_pd_proxy_retries_total": "Legs retried on another backend.",
        "ascend_pd_proxy_recomputes_total": "Re-prefills after stop_reason=recomputed.",
        "ascend_pd_proxy_drains_total": "1-token decode legs sent to free abandoned KV.",
        "ascend_pd_proxy_client_disconnects_total": "Clients that went away mid-request.",
        "ascend_pd_proxy_missing_kv_params_total": "Prefill answers without kv_transfer_params.",
        "ascend_pd_proxy_prefill_latency_seconds": "Prefill leg duration.",
        "ascend_pd_proxy_decode_first_byte_seconds": "Decode leg start to first byte.",
        "ascend_pd_proxy_e2e_latency_seconds": "Client request start to last byte.",
        "ascend_pd_proxy_queue_wait_seconds": "Time queued requests waited for a slot.",
    }

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self.counters[name][tuple(sorted(labels.items()))] += value

    def observe(self, name: str, value: float, **labels: str) -> None:
        self.histograms[name][tuple(sorted(labels.items()))].observe(value)

    def value(self, name: str, **labels: str) -> float:
        """A counter's value (0 when never incremented); for tests and /health."""
        return self.counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self, pools: Iterable[Pool]) -> str:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines.append(f"# HELP {name} {self.HELP.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            lines += [f"{name}{_fmt(lab)} {val:g}" for lab, val in sorted(series.items())]
        for name, hseries in sorted(self.histograms.items()):
            lines.append(f"# HELP {name} {self.HELP.get(name, name)}")
            lines.append(f"# TYPE {name} histogram")
            for lab, hist in sorted(hseries.items()):
                running = 0
                for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    bucket = _fmt(lab, 'le="' + le + '"')
                    lines.append(f"{name}_bucket{bucket} {running}")
                lines.append(f"{name}_sum{_fmt(lab)} {hist.total:.6f}")
                lines.append(f"{name}_count{_fmt(lab)} {hist.n}")
        gauges = (("ascend_pd_proxy_in_flight", "Requests in flight per backend.",
                   lambda b: b.in_flight),
                  ("ascend_pd_proxy_outstanding_prompt_tokens",
                   "Prompt tokens sent and not yet answered per backend.",
                   lambda b: b.outstanding_tokens),
                  ("ascend_pd_proxy_backend_healthy", "1 when the backend takes traffic.",
                   lambda b: int(b.healthy)))
        pools = list(pools)
        for name, help_text, get in gauges:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} gauge")
            for pool in pools:
                for b in pool.backends:
                    lab = (("backend", str(b.address)), ("role", pool.role))
                    lines.append(f"{name}{_fmt(lab)} {get(b)}")
        return "\n".join(lines) + "\n"
