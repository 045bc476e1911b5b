"""The admission gate and the circuit breaker as pure state machines (no sockets, fake clock).

The end-to-end behaviour (429/503 with Retry-After through a real proxy, backends never
above their limit) is in test_admission.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from ascend_pd.proxy.admission import Admission, AdmissionLimits, Overloaded
from ascend_pd.proxy.balancer import Backend, Pool
from ascend_pd.proxy.breaker import Breaker
from ascend_pd.proxy.config import BackendAddress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro
    return asyncio.run(main())


# -- breaker ---------------------------------------------------------------------------
def test_breaker_opens_after_consecutive_failures_and_half_opens_with_one_probe() -> None:
    clock = Clock()
    br = Breaker(failure_threshold=3, open_s=10, clock=clock)
    assert br.record(False) is None and br.record(False) is None
    assert br.allows()
    assert br.record(False) == "open"
    assert not br.allows() and br.retry_after_s() == 10
    clock.now += 10
    assert br.allows()  # half-open: one probe may go
    br.on_send()
    assert br.state == "half_open" and not br.allows()  # ... and only one
    assert br.record(True) == "closed"
    assert br.allows()


def test_breaker_failed_probe_opens_again_and_success_resets_the_count() -> None:
    clock = Clock()
    br = Breaker(failure_threshold=2, open_s=5, clock=clock)
    br.record(False)
    br.record(True)  # the count is of *consecutive* failures
    assert br.record(False) is None
    assert br.record(False) == "open"
    clock.now += 5
    br.on_send()
    assert br.record(False) == "open"
    assert not br.allows()
    assert br.opened_total == 2


def test_admission_counts_4xx_as_success_and_5xx_or_network_errors_as_failure() -> None:
    backend = Backend(BackendAddress("127.0.0.1", 1), "decode")
    adm = Admission({"decode": Pool.of("decode", [backend.address])},
                    AdmissionLimits(breaker_failures=2))
    b = adm.pools["decode"].backends[0]
    for _ in range(10):
        adm.record(b, 400)
    assert adm.breaker(b).state == "closed"
    adm.record(b, 503)
    assert adm.record(b, None) == "open"


# -- admission ---------------------------------------------------------------------------
def _gate(n: int, **limits: Any) -> Admission:
    pool = Pool.of("decode", [BackendAddress("127.0.0.1", 9000 + i) for i in range(n)])
    return Admission({"decode": pool}, AdmissionLimits(**limits))


def test_per_backend_limit_is_never_exceeded_and_waiters_get_slots_in_order() -> None:
    async def main() -> list[int]:
        adm = _gate(2, max_in_flight=2, queue_size=10, queue_timeout_s=5)
        held = [await adm.acquire("decode") for _ in range(4)]
        assert all(h is not None for h in held)
        assert [b.in_flight for b in adm.pools["decode"].backends] == [2, 2]
        order: list[int] = []

        async def waiter(i: int) -> None:
            got = await adm.acquire("decode")
            assert got is not None
            order.append(i)

        tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
        await asyncio.sleep(0)
        assert adm.depth("decode") == 3
        # A newcomer must not jump the queue even though it arrives when a slot frees.
        adm.release(*held[0])  # type: ignore[misc]
        late = asyncio.create_task(waiter(99))
        adm.release(*held[1])  # type: ignore[misc]
        adm.release(*held[2])  # type: ignore[misc]
        await asyncio.sleep(0.01)
        assert max(b.in_flight for b in adm.pools["decode"].backends) <= 2
        adm.release(*held[3])  # type: ignore[misc]
        await asyncio.gather(*tasks, late)
        return order

    assert run(main()) == [0, 1, 2, 99]


def test_full_queue_is_429_and_a_timed_out_wait_is_503() -> None:
    async def main() -> None:
        adm = _gate(1, max_in_flight=1, queue_size=1, queue_timeout_s=0.05)
        assert await adm.acquire("decode") is not None
        first = asyncio.create_task(adm.acquire("decode"))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as full:
            await adm.acquire("decode")
        assert full.value.status == 429 and full.value.retry_after_s >= 1
        with pytest.raises(Overloaded) as late:
            await first
        assert late.value.status == 503 and late.value.reason == "queue_timeout"
        assert adm.waiting == 0 and adm.depth("decode") == 0
        assert adm.rejected == {"queue_full": 1, "queue_timeout": 1}

    run(main())


def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    async def main() -> None:
        adm = _gate(1, max_in_flight=1, queue_size=10, queue_timeout_s=5)
        held = await adm.acquire("decode")
        gone = asyncio.create_task(adm.acquire("decode"))
        stays = asyncio.create_task(adm.acquire("decode"))
        await asyncio.sleep(0)
        adm.release(*held)  # type: ignore[misc]  # wakes `gone` ...
        gone.cancel()  # ... whose client leaves before it runs
        got = await asyncio.wait_for(stays, 1)
        assert got is not None and got.backend.in_flight == 1

    run(main())


def test_retries_never_queue_and_open_breakers_or_no_backend_mean_none() -> None:
    async def main() -> None:
        adm = _gate(2, max_in_flight=1, queue_size=10, queue_timeout_s=5)
        slot_a = await adm.acquire("decode")
        assert slot_a is not None
        a = slot_a.backend
        slot_b = await adm.acquire("decode", tried=[a])
        assert slot_b is not None and slot_b.backend is not a
        b = slot_b.backend
        assert await adm.acquire("decode", tried=[a]) is None  # full and a retry: no wait
        adm.release(a)
        for _ in range(5):
            adm.record(a, 500)
        adm.release(b)
        for _ in range(5):
            adm.record(b, None)
        assert await adm.acquire("decode") is None  # every breaker open: the caller's 503
        assert adm.to_dict()["breakers_open"] == ["127.0.0.1:9000", "127.0.0.1:9001"]

    run(main())


def test_half_open_backend_takes_exactly_one_probe() -> None:
    async def main() -> None:
        clock = Clock()
        pool = Pool.of("prefill", [BackendAddress("127.0.0.1", 9000)])
        adm = Admission({"prefill": pool}, AdmissionLimits(breaker_failures=1,
                                                           breaker_open_s=1), clock)
        b = pool.backends[0]
        adm.record(b, 502)
        assert await adm.acquire("prefill") is None
        clock.now += 1
        probe = await adm.acquire("prefill")
        assert probe is not None and probe.backend is b
        assert await adm.acquire("prefill") is None  # the probe is out
        adm.release(b)
        adm.record(b, 200)
        again = await adm.acquire("prefill")
        assert again is not None and again.backend is b

    run(main())
