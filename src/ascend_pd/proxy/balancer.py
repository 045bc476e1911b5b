"""Pure backend selection per role: no I/O, no clock, easy to test.

A ``Pool`` holds the backends of one role. Load is *outstanding prompt tokens* for prefill
(what a prefill instance has left to compute) and *outstanding requests* for decode. Every
``acquire`` must be paired with a ``release`` -- the proxy does it in ``finally`` blocks so
failures and cancellations never skew the load (vllm-ascend#8836). With a handful of
backends a linear scan beats any heap and cannot break an invariant
(vllm-ascend's example proxy mutated its heap without re-heapifying).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ascend_pd.proxy.affinity import PrefixAffinity
from ascend_pd.proxy.config import BackendAddress, Policy

Role = Literal["prefill", "decode"]
Transition = Literal["ejected", "restored"]


@dataclass(eq=False)
class Backend:
    """One backend and its live accounting (identity equality: one object per backend)."""

    address: BackendAddress
    role: Role
    healthy: bool = True
    in_flight: int = 0
    outstanding_tokens: int = 0
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    removed: bool = False

    @property
    def load(self) -> int:
        return self.outstanding_tokens if self.role == "prefill" else self.in_flight

    def to_dict(self) -> dict[str, object]:
        return {"address": str(self.address), "role": self.role, "healthy": self.healthy,
                "in_flight": self.in_flight, "outstanding_tokens": self.outstanding_tokens}


@dataclass
class Pool:
    """The backends of one role and the selection policy."""

    role: Role
    policy: Policy = "least_loaded"
    backends: list[Backend] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    #: prefix -> backend table of the ``cache_aware`` policy
    affinity: PrefixAffinity = field(default_factory=PrefixAffinity)
    _cursor: int = 0

    @classmethod
    def of(cls, role: Role, addresses: Iterable[BackendAddress], policy: Policy = "least_loaded",
           seed: int | None = None) -> Pool:
        pool = cls(role, policy, rng=random.Random(seed))
        for address in addresses:
            pool.add(address)
        return pool

    def find(self, address: BackendAddress) -> Backend | None:
        return next((b for b in self.backends if b.address == address), None)

    def add(self, address: BackendAddress) -> Backend:
        """Add (or re-add) a backend; an existing one is returned unchanged."""
        backend = self.find(address)
        if backend is None:
            backend = Backend(address, self.role)
            self.backends.append(backend)
        return backend

    def remove(self, address: BackendAddress) -> Backend | None:
        """Stop routing to a backend. In-flight requests keep their reference and release."""
        backend = self.find(address)
        if backend is not None:
            self.backends.remove(backend)
            backend.removed = True
            self.affinity.forget(backend)
        return backend

    def healthy(self) -> list[Backend]:
        return [b for b in self.backends if b.healthy]

    def choose(self, exclude: Iterable[Backend] = ()) -> Backend | None:
        """Pick a healthy backend not in ``exclude``; None when there is none."""
        picked = self.choose_for(exclude)
        return picked[0] if picked is not None else None

    def choose_for(self, exclude: Iterable[Backend] = (), keys: Sequence[int] = (),
                   tokens: int = 0) -> tuple[Backend, int] | None:
        """Pick for a request of ``tokens`` prompt tokens whose prefix chain is ``keys``
        (``affinity.prefix_keys``; ``cache_aware`` only): the backend and the tokens to
        charge it (fewer than ``tokens`` when ``cache_aware`` expects a cached prefix)."""
        skip = set(map(id, exclude))
        candidates = [b for b in self.backends if b.healthy and id(b) not in skip]
        if not candidates:
            return None
        if len(candidates) == 1 and self.policy != "cache_aware":
            return candidates[0], tokens
        self._cursor += 1
        if self.policy == "round_robin":
            return candidates[self._cursor % len(candidates)], tokens
        if self.policy == "power_of_two":
            a, b = self.rng.sample(candidates, 2)
            return (a if (a.load, a.in_flight) <= (b.load, b.in_flight) else b), tokens
        # least_loaded: scan from a rotating start so ties spread instead of piling on one.
        start = self._cursor % len(candidates)
        ordered = candidates[start:] + candidates[:start]
        least = min(ordered, key=lambda b: (b.load, b.in_flight))
        if self.policy == "cache_aware":
            return self.affinity.choose(candidates, keys, least, tokens)
        return least, tokens

    @staticmethod
    def acquire(backend: Backend, tokens: int = 0) -> None:
        backend.in_flight += 1
        backend.outstanding_tokens += tokens

    @staticmethod
    def release(backend: Backend, tokens: int = 0) -> None:
        backend.in_flight -= 1
        backend.outstanding_tokens -= tokens

    @staticmethod
    def record(backend: Backend, ok: bool, *, eject_after: int,
               restore_after: int) -> Transition | None:
        """Count a health probe (or a failed connect); returns a state change, if any."""
        if ok:
            backend.consecutive_failures = 0
            backend.consecutive_successes += 1
            if not backend.healthy and backend.consecutive_successes >= restore_after:
                backend.healthy = True
                return "restored"
            return None
        backend.consecutive_successes = 0
        backend.consecutive_failures += 1
        if backend.healthy and backend.consecutive_failures >= eject_after:
            backend.healthy = False
            return "ejected"
        return None

    def totals(self) -> tuple[int, int]:
        """(in-flight requests, outstanding tokens) over all backends, for tests and /health."""
        return (sum(b.in_flight for b in self.backends),
                sum(b.outstanding_tokens for b in self.backends))
