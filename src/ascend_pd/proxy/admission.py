"""Admission control: what may reach a backend, and what waits (bounded) or is turned away.

Above ~1,400 concurrent requests the upstream proxy passes everything on and decode
instances crash (vllm-ascend issue #8545). Here every leg goes through one gate:

* **Per-backend in-flight limit** (``max_in_flight``, 0 = none): a backend at its limit is
  not a candidate. A drain leg (1 token, frees prefill memory) waits for a slot at the head
  of the queue, outside its size bound, for at most its own timeout.
* **Circuit breaker** per backend (``proxy.breaker``), fed by real outcomes.
* **Bounded global queue**: when every usable backend of a role is full, a first attempt
  waits in FIFO order for a slot, at most ``queue_timeout_s``; at most ``queue_size``
  requests wait over all roles. A full queue answers **429**, a wait that timed out **503**,
  both with ``Retry-After`` and an OpenAI-style error body (``Overloaded``). A retry (the
  request already tried a backend) never queues: it fails over at once or gives up.

Slots are handed over in order: a released slot goes to the oldest waiter, and a new
arrival only takes a free slot that no waiter is owed, so waiting requests are not starved
by new ones. Everything runs on the event loop; nothing here blocks or sleeps unbounded.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ascend_pd.proxy.balancer import Backend, Pool
from ascend_pd.proxy.breaker import Breaker, is_failure


@dataclass(frozen=True)
class AdmissionLimits:
    """The knobs (ProxyConfig carries them; see its docstring)."""

    max_in_flight: int = 0
    queue_size: int = 1024
    queue_timeout_s: float = 30.0
    breaker_failures: int = 5
    breaker_open_s: float = 10.0


class Slot(NamedTuple):
    """An acquired backend and the prompt tokens charged to it (release both)."""

    backend: Backend
    tokens: int


class Overloaded(Exception):
    """No slot for the request: ``status`` 429 (queue full) or 503 (waited too long)."""

    def __init__(self, status: int, reason: str, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after_s = retry_after_s


class _QueueTimeout(Exception):
    pass


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(_QueueTimeout())


class Admission:
    """The gate for every pool of a proxy (one per process)."""

    def __init__(self, pools: Mapping[str, Pool], limits: AdmissionLimits,
                 clock: Callable[[], float] = time.monotonic,
                 on_wait: Callable[[str, float], None] | None = None) -> None:
        self.pools = pools
        self.limits = limits
        self.clock = clock
        self.breakers: dict[Backend, Breaker] = {}
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {r: deque() for r in pools}
        self._owed: dict[str, int] = dict.fromkeys(pools, 0)  # woken, not yet resumed
        self.waiting = 0
        self.rejected: dict[str, int] = {"queue_full": 0, "queue_timeout": 0}
        #: called with (role, seconds) when a queued request stops waiting (metrics)
        self.on_wait = on_wait

    # -- state -------------------------------------------------------------------------
    def breaker(self, backend: Backend) -> Breaker:
        found = self.breakers.get(backend)
        if found is None:
            found = self.breakers[backend] = Breaker(self.limits.breaker_failures,
                                                     self.limits.breaker_open_s, self.clock)
        return found

    def _has_room(self, backend: Backend) -> bool:
        limit = self.limits.max_in_flight
        return not limit or backend.in_flight < limit

    def _usable(self, role: str, tried: Iterable[Backend]) -> list[Backend]:
        skip = set(map(id, tried))
        return [b for b in self.pools[role].backends
                if b.healthy and id(b) not in skip and self.breaker(b).allows()]

    def _free_slots(self, usable: list[Backend]) -> float:
        limit = self.limits.max_in_flight
        if not limit:
            return math.inf
        return sum(max(0, limit - b.in_flight) for b in usable)

    def depth(self, role: str) -> int:
        return len(self._waiters[role])

    # -- acquire / release ---------------------------------------------------------------
    def _take(self, role: str, candidates: list[Backend], tokens: int,
              avoid: Sequence[Backend] = (), keys: Sequence[int] = ()) -> Slot | None:
        """Choose among ``candidates`` (by the pool's policy, not one in ``avoid`` unless
        nothing else is left) and acquire it."""
        pool = self.pools[role]
        if not candidates:
            return None
        shun = set(map(id, avoid))
        keep = set(map(id, [b for b in candidates if id(b) not in shun] or candidates))
        picked = pool.choose_for([b for b in pool.backends if id(b) not in keep], keys, tokens)
        if picked is None:
            return None
        backend, charged = picked
        Pool.acquire(backend, charged)
        self.breaker(backend).on_send()
        return Slot(backend, charged)

    async def acquire(self, role: str, tried: Iterable[Backend] = (), tokens: int = 0, *,
                      avoid: Sequence[Backend] = (), keys: Sequence[int] = (),
                      priority: bool = False, timeout: float | None = None,
                      ) -> Slot | None:
        """A backend of ``role`` with room, acquired (``release`` the slot in ``finally``).

        None when no backend can take the request at all (none healthy, all breakers open,
        all tried) -- the caller's 503. Raises Overloaded when the queue is full or the wait
        timed out. ``tried`` non-empty marks a retry, which never queues. ``avoid``: pick
        these only when no other backend can take it. ``keys``: the prefix chain for the
        ``cache_aware`` policy. ``priority`` (a drain leg, which frees prefill memory): wait
        at the head of the queue, never rejected for a full queue, at most ``timeout``
        seconds (then None), and use a backend with an open breaker when no other is left.
        """
        tried = list(tried)
        usable = self._usable(role, tried)
        if priority:
            skip = set(map(id, tried))
            usable = usable or [b for b in self.pools[role].backends
                                if b.healthy and id(b) not in skip]
            backend = self._take(role, [b for b in usable if self._has_room(b)], tokens, avoid)
            if backend is not None or not usable:
                return backend
            return await self._wait(role, tokens, (), priority=True, timeout=timeout)
        if not usable:
            return None
        owed = len(self._waiters[role]) + self._owed[role]
        if self._free_slots(usable) > owed:
            backend = self._take(role, [b for b in usable if self._has_room(b)], tokens,
                                 avoid, keys)
            if backend is not None:
                return backend
        if tried:
            return None
        return await self._wait(role, tokens, keys)

    async def _wait(self, role: str, tokens: int, keys: Sequence[int], *,
                    priority: bool = False, timeout: float | None = None) -> Slot | None:
        limits = self.limits
        if not priority and self.waiting >= limits.queue_size:
            self.rejected["queue_full"] += 1
            raise Overloaded(429, "queue_full",
                             f"the proxy is at capacity: every {role} backend is at its limit "
                             f"of {limits.max_in_flight} requests and {self.waiting} requests "
                             "are queued; retry later", 1)
        loop = asyncio.get_running_loop()
        start = self.clock()
        deadline = start + (timeout if timeout is not None else limits.queue_timeout_s)
        waiters = self._waiters[role]
        if not priority:
            self.waiting += 1
        front = priority
        try:
            while True:
                fut: asyncio.Future[None] = loop.create_future()
                if front:
                    waiters.appendleft(fut)
                else:
                    waiters.append(fut)
                # A timer fails the future, rather than asyncio.wait_for (which swallows a
                # cancellation arriving after the future completed, Python <= 3.11) or
                # asyncio.timeout (3.11+; the package supports 3.10).
                timer = loop.call_later(max(0.0, deadline - self.clock()), _expire, fut)
                try:
                    await fut
                except _QueueTimeout:
                    if priority:
                        return None
                    self.rejected["queue_timeout"] += 1
                    raise Overloaded(
                        503, "queue_timeout",
                        f"no {role} backend had room within {limits.queue_timeout_s:g} s; "
                        "retry later", max(1, math.ceil(limits.queue_timeout_s / 10))) from None
                except BaseException:
                    if fut.done() and not fut.cancelled() and fut.exception() is None:
                        # Woken, then cancelled (client gone) before taking the slot: pass
                        # the slot on, or the next waiter would sit until its timeout.
                        self._owed[role] -= 1
                        self._wake(role)
                    raise
                finally:
                    timer.cancel()
                    if not fut.done():
                        fut.cancel()
                    if fut.cancelled() or fut.exception() is not None:
                        try:
                            waiters.remove(fut)
                        except ValueError:
                            pass
                self._owed[role] -= 1  # woken: the slot is ours to take
                usable = self._usable(role, ())
                if not usable and priority:
                    usable = [b for b in self.pools[role].backends if b.healthy]
                if not usable:
                    return None
                backend = self._take(role, [b for b in usable if self._has_room(b)], tokens,
                                     keys=keys)
                if backend is not None:
                    return backend
                front = True  # someone slipped in: keep our place at the head
        finally:
            if not priority:
                self.waiting -= 1
            if self.on_wait is not None:
                self.on_wait(role, self.clock() - start)

    def release(self, backend: Backend, tokens: int = 0) -> None:
        """Give a slot back (its backend and charged tokens) and hand it to the oldest
        waiter of that role."""
        Pool.release(backend, tokens)
        breaker = self.breakers.get(backend)
        if breaker is not None and breaker.state == "half_open":
            breaker.probing = False  # the probe ended without an outcome (client gone)
        if not backend.removed:
            self._wake(backend.role)

    def _wake(self, role: str) -> None:
        waiters = self._waiters.get(role)
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                self._owed[role] += 1
                return

    def record(self, backend: Backend, status: int | None) -> str | None:
        """Feed the breaker: ``status`` None for a network error or timeout, else the HTTP
        status. Returns ``"open"``/``"closed"`` when the breaker changed."""
        return self.breaker(backend).record(not is_failure(status))

    def forget(self, backend: Backend) -> None:
        """A backend was removed from its pool."""
        self.breakers.pop(backend, None)

    # -- reporting -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {"waiting": self.waiting, "queue_size": self.limits.queue_size,
                "max_in_flight": self.limits.max_in_flight, "rejected": dict(self.rejected),
                "breakers_open": sorted(str(b.address) for b, br in self.breakers.items()
                                        if br.state != "closed")}

    def metric_lines(self) -> list[str]:
        """Prometheus gauges and counters of the gate (text exposition 0.0.4)."""
        lines = ["# HELP ascend_pd_proxy_queue_depth Requests waiting for a backend slot.",
                 "# TYPE ascend_pd_proxy_queue_depth gauge"]
        lines += [f'ascend_pd_proxy_queue_depth{{role="{role}"}} {self.depth(role)}'
                  for role in sorted(self._waiters)]
        lines += ["# HELP ascend_pd_proxy_admission_rejected_total Requests turned away "
                  "(queue_full: 429, queue_timeout: 503).",
                  "# TYPE ascend_pd_proxy_admission_rejected_total counter"]
        lines += [f'ascend_pd_proxy_admission_rejected_total{{reason="{reason}"}} {n}'
                  for reason, n in sorted(self.rejected.items())]
        lines += ["# HELP ascend_pd_proxy_breaker_open 1 while a backend's circuit breaker "
                  "is open or half-open.",
                  "# TYPE ascend_pd_proxy_breaker_open gauge"]
        for role, pool in sorted(self.pools.items()):
            for b in pool.backends:
                is_open = int(self.breaker(b).state != "closed")
                lines.append(f'ascend_pd_proxy_breaker_open{{backend="{b.address}",'
                             f'role="{role}"}} {is_open}')
        return lines
