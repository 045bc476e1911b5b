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
        picked = pool.choose_for(keys=keys, tokens=700)
        assert picked is not None
        picks.add(picked[0].address.port)
    assert len(picks) == 1


def test_distinct_prefixes_still_spread_by_load() -> None:
    pool = _pool()
    seen = []
    for i in range(3):
        picked = pool.choose_for(keys=prefix_keys({"prompt": f"tenant {i} " * 400}),
                                 tokens=1000)
        assert picked is not None and picked[1] == 1000  # nothing cached: full price
        backend = picked[0]
        Pool.acquire(backend, 1000)
        seen.append(backend.address.port)
    assert sorted(seen) == [8100, 8101, 8102]


def test_a_hot_prefix_stays_home_until_its_backlog_outweighs_the_cache() -> None:
    pool = _pool(2)
    keys = prefix_keys({"prompt": SYSTEM})  # 4 blocks: 512 tokens cached once computed
    tokens = 600
    first = pool.choose_for(keys=keys, tokens=tokens)
    assert first is not None
    home = first[0]
    again = pool.choose_for(keys=keys, tokens=tokens)
    assert again == (home, 600 - 512)  # charged only what it must compute
    Pool.acquire(home, 400)  # backlog 400 + 88 < 600 on the idle one: stay home
    stay = pool.choose_for(keys=keys, tokens=tokens)
    assert stay is not None and stay[0] is home
    Pool.acquire(home, 200)  # backlog 600 + 88 > 600: the idle one finishes first
    spill = pool.choose_for(keys=keys, tokens=tokens)
    assert spill is not None and spill[0] is not home and spill[1] == 600
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
    picked = pool.choose_for(keys=keys, tokens=600)
    assert picked is not None
    home = picked[0]
    pool.remove(home.address)
    assert all(b is not home for b in pool.affinity.table.values())
    with pytest.raises(UsageError, match="prefill"):
        ProxyConfig(prefill=(BackendAddress("a", 1),), decode=(BackendAddress("b", 2),),
                    policy_decode="cache_aware")
