"""The simulated prefill's prefix cache: a prompt whose leading blocks it computed recently
computes only the rest (the gain cache-aware routing is measured against)."""

from __future__ import annotations

import asyncio

import httpx

from ascend_pd.simserver import SimServerProcess
from ascend_pd.simserver.kv import BLOCK_SIZE
from ascend_pd.simserver.prefix_cache import ComputeLanes, PrefixCache, block_hashes

MODEL = "sim-model"
SYSTEM = " ".join(f"sys{i:04d}" for i in range(600))  # 1,200 tokens: 9 full blocks


def _prefill(server: SimServerProcess, prompt: str) -> None:
    resp = httpx.post(server.url + "/v1/completions", timeout=5,
                      json={"model": MODEL, "prompt": prompt, "max_tokens": 1,
                            "kv_transfer_params": {"do_remote_decode": True}})
    assert resp.status_code == 200


def _state(server: SimServerProcess) -> dict[str, int]:
    return httpx.get(server.url + "/sim/state", timeout=5).json()  # type: ignore[no-any-return]


def test_shared_prefix_is_computed_once_and_a_cold_instance_computes_it_again() -> None:
    with SimServerProcess("prefill", model=MODEL, prefill_ms_per_1k=0) as warm, \
            SimServerProcess("prefill", model=MODEL, prefill_ms_per_1k=0,
                             prefix_cache_blocks=0) as off:
        _prefill(warm, SYSTEM + " user one asks")
        first = _state(warm)
        assert first["prefix_cache_hit_tokens"] == 0
        _prefill(warm, SYSTEM + " user two asks something else")
        second = _state(warm)
        assert second["prefix_cache_hit_tokens"] == 9 * BLOCK_SIZE
        assert second["prefill_computed_tokens"] - first["prefill_computed_tokens"] < 200
        _prefill(off, SYSTEM + " user one asks")
        _prefill(off, SYSTEM + " user two asks something else")
        assert _state(off)["prefix_cache_hit_tokens"] == 0


def test_lru_evicts_the_oldest_prefix_and_a_differing_block_breaks_the_chain() -> None:
    a = block_hashes([f"a{i}" for i in range(3 * BLOCK_SIZE)])
    b = block_hashes([f"b{i}" for i in range(3 * BLOCK_SIZE)])
    cache = PrefixCache(capacity_blocks=4)
    cache.insert(a)
    assert cache.lookup(a) == 3 * BLOCK_SIZE
    cache.insert(b)  # 6 blocks > 4: a's oldest go
    assert cache.lookup(b) == 3 * BLOCK_SIZE
    assert cache.lookup(a) == 0  # its first block was evicted: nothing after it counts
    tokens = [f"a{i}" for i in range(3 * BLOCK_SIZE)]
    tokens[BLOCK_SIZE + 5] = "changed"
    cache.insert(a)
    assert cache.lookup(block_hashes(tokens)) == BLOCK_SIZE


def test_one_compute_lane_serialises_prefills() -> None:
    async def main() -> float:
        lanes = ComputeLanes(1)
        loop = asyncio.get_running_loop()
        t = loop.time()
        await asyncio.gather(*(lanes.run(0.05) for _ in range(3)))
        return loop.time() - t

    # Three 50 ms prefills on one lane cannot finish before 150 ms (a lower bound only).
    assert asyncio.run(main()) >= 0.15
