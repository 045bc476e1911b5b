"""The KV-accounting guarantee under fire: 500 requests with 30 % random disconnects at
random phases, over-long prompts, max_tokens 0, and a decode killed and restarted mid-run.
Afterwards no simulated prefill holds a block, the proxy's in-flight gauges are 0, and no
client got a 200 with an empty or truncated body. (benchmarks/proxy_soak.py is the 20,000
request version, with the proxy's memory and file descriptors.)"""

from __future__ import annotations

import asyncio

from ascend_pd.simserver.soak import soak
from tests.proxy.conftest import MODEL, sim_state, wait_for

MAX_MODEL_LEN = 512


def test_soak_with_disconnects_kills_and_4xx_leaves_nothing_held(sims, make_proxy):
    knobs = {"max_model_len": MAX_MODEL_LEN, "kv_abort_timeout_s": 3600,
             "prefill_ms_per_1k": 20, "decode_ms_per_token": 1}
    prefills = [sims("prefill", **knobs) for _ in range(2)]
    decodes = [sims("decode", **knobs) for _ in range(2)]
    victim = decodes[1]
    proxy = make_proxy(prefills, decodes, eject_after=1, restore_after=1)

    def restart() -> None:
        decodes.append(sims("decode", port=victim.port, **knobs))

    result = asyncio.run(soak(proxy.url, requests=500, concurrency=24, seed=7, model=MODEL,
                              max_model_len=MAX_MODEL_LEN,
                              hooks=[(150, victim.kill), (300, restart)]))
    summary = result.to_dict()
    assert result.bad_200 == [], summary
    assert result.transport_errors == [], summary
    assert result.disconnected > 100, summary
    assert result.statuses[200] > 150, summary
    assert result.statuses[400] > 10, summary  # the over-long prompts and max_tokens 0
    try:
        wait_for(lambda: all(sim_state(p)["held_blocks"] == 0 for p in prefills), timeout=30,
                 what="every prefill's blocks consumed or drained")
    except AssertionError:
        print([sim_state(p) for p in prefills + decodes])
        print(proxy.state.metrics.render(proxy.state.pools.values()))
        raise
    assert all(sim_state(p)["kv_force_freed"] == 0 for p in prefills)
    # (the make_proxy fixture then waits for the in-flight gauges to return to 0)
