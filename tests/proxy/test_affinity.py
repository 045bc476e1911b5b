"""The cache_aware prefill policy: same prefix, same instance -- unless that overloads it."""

from __future__ import annotations

import pytest

from ascend_pd.errors import UsageError
from ascend_pd.proxy.affinity import BLOCK_CHARS, prefix_keys
from ascend_pd.proxy.balancer import Pool
from ascend_pd.proxy.config import BackendAddress, ProxyConfig

SYSTEM = "You are a careful assistant. " * 80  # ~2,300 characters: 4 full blocks


def _pool(n: int = 3) -> Pool:
    return Pool.of("prefill", [BackendAddress("10.0.0.1", 8100 + i) for i in range(n)],
                   "cache_aware")


def test_requests_sharing_a_system_prompt_land_on_one_instance() -> None:
    pool = _pool()
    picks = set()
    for user in range(20):
        keys = prefix_keys({"prompt": SYSTEM + f"user {user}: hello"})
        assert len(keys) == len(SYSTEM) // BLOCK_CHARS
        picks.add(pool.choose(keys=keys).address.port)  # type: ignore[union-attr]
    assert len(picks) == 1


def test_distinct_prefixes_still_spread_by_load() -> None:
    pool = _pool()
    seen = []
    for i in range(3):
        backend = pool.choose(keys=prefix_keys({"prompt": f"tenant {i} " * 400}))
        assert backend is not None
        Pool.acquire(backend, 1000)
        seen.append(backend.address.port)
    assert sorted(seen) == [8100, 8101, 8102]


def test_a_hot_prefix_overflows_to_the_least_loaded_instance() -> None:
    pool = _pool(2)
    keys = prefix_keys({"prompt": SYSTEM})
    home = pool.choose(keys=keys)
    assert home is not None
    Pool.acquire(home, 2000)
    assert pool.choose(keys=keys) is home  # 2,000 tokens ahead: still within the bound
    Pool.acquire(home, 8000)
    other = pool.choose(keys=keys)
    assert other is not None and other is not home  # 10,000 ahead: overloaded, spill
    assert pool.affinity.overflows == 1


def test_chat_is_keyed_on_the_rendered_messages_so_later_turns_match() -> None:
    turn1 = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]
    turn2 = [*turn1, {"role": "assistant", "content": "hello " * 100},
             {"role": "user", "content": "and then?"}]
    k1, k2 = prefix_keys({"messages": turn1}), prefix_keys({"messages": turn2})
    assert k1 and k2[:len(k1)] == k1
    # The role is part of the rendering: the same text as a user message is another prefix.
    k3 = prefix_keys({"messages": [{"role": "user", "content": SYSTEM}]})
    assert k3[0] != k1[0]
    assert prefix_keys({"prompt": ["a", "b"]}) == ()
    assert len(prefix_keys({"prompt": list(range(300))})) == 2


def test_removed_backend_is_forgotten_and_cache_aware_is_prefill_only() -> None:
    pool = _pool(2)
    keys = prefix_keys({"prompt": SYSTEM})
    home = pool.choose(keys=keys)
    assert home is not None
    pool.remove(home.address)
    assert all(b is not home for b in pool.affinity.table.values())
    with pytest.raises(UsageError, match="prefill"):
        ProxyConfig(prefill=(BackendAddress("a", 1),), decode=(BackendAddress("b", 2),),
                    policy_decode="cache_aware")
