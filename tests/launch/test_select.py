"""Which units launch/status/stop act on: role, host and instance filters."""

from __future__ import annotations

import pytest

from ascend_pd.errors import UsageError
from ascend_pd.examples import example_spec
from ascend_pd.launch.api import plan_units, select
from ascend_pd.spec import parse_spec


def test_units_in_start_order_with_headless_and_proxy() -> None:
    units, _manifest = plan_units(parse_spec(example_spec("a3-2p1d")))
    assert [u.name for u in units] == ["prefill-0@p0", "prefill-1@p1", "decode-0@d0",
                                       "decode-0@d1", "proxy@p0"]
    headless = next(u for u in units if u.name == "decode-0@d1")
    assert headless.port is None
    assert headless.ready_marker is None
    assert all(u.files for u in units)


def test_filters() -> None:
    units, _manifest = plan_units(parse_spec(example_spec("a3-2p1d")))
    assert [u.name for u in select(units, "decode")] == ["decode-0@d0", "decode-0@d1"]
    assert [u.name for u in select(units, "all", "d1")] == ["decode-0@d1"]
    assert [u.name for u in select(units, "all", None, "prefill-1")] == ["prefill-1@p1"]
    assert [u.name for u in select(units, "all", None, "decode-0@d0")] == ["decode-0@d0"]
    with pytest.raises(UsageError, match="nothing matches"):
        select(units, "prefill", "d0")
