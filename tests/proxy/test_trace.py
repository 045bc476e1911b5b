"""The access-log line and generated request ids (what an operator reads in the proxy's log)."""

from __future__ import annotations

import json
import uuid

from ascend_pd.proxy.balancer import Backend
from ascend_pd.proxy.config import BackendAddress
from ascend_pd.proxy.metrics import ProxyMetrics
from ascend_pd.proxy.trace import LOG_FIELDS, Trace, finish_trace, new_request_id


def test_access_line_has_the_documented_fields_and_no_private_state():
    trace = Trace("rid-1", "/v1/completions", stream=True, prefill="10.0.0.1:8100")
    trace.kv_pending.append(({"prompt": "secret"}, {"remote_block_ids": [1, 2, 3]}))
    trace.failed_decodes.append(Backend(BackendAddress("10.0.0.3", 8200), "decode"))
    line = json.loads(trace.line())
    assert tuple(line) == LOG_FIELDS
    assert line["request_id"] == "rid-1"
    assert line["stream"] is True
    assert line["prefill"] == "10.0.0.1:8100"


def test_finish_trace_sets_total_and_counts_the_request():
    metrics = ProxyMetrics()
    trace = Trace("rid-2", "/v1/chat/completions", status=200, decode="10.0.0.3:8200")
    finish_trace(trace, metrics)
    assert trace.total_ms is not None and trace.total_ms >= 0
    assert metrics.value("ascend_pd_proxy_client_requests_total",
                         endpoint="/v1/chat/completions", status="200") == 1


def test_generated_request_ids_are_distinct_uuid4_strings():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_backend_name_brackets_ipv6_and_is_stable():
    address = BackendAddress("fd00::5", 8100)
    assert str(address) == str(address) == "[fd00::5]:8100"
    assert address.url == "http://[fd00::5]:8100"
    assert str(BackendAddress("prefill-0", 8100)) == "prefill-0:8100"
