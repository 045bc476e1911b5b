"""The error strings users reported in 2026 each name one catalogue entry.

Each string is quoted from the upstream issue in the first column (vllm-project/vllm-ascend
unless another repository is named). A single line must be enough: users paste one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ascend_pd.diagnose import diagnose_text, load_catalogue

DATA = Path(__file__).resolve().parent.parent / "data" / "diagnose"

FIELD_STRINGS: list[tuple[str, str, str]] = [
    ("#7711", "[ERROR] HCCL(3101,python3):2026-03-27-10:02:11.120.301 [RanktablCheck] "
     "'device ip' is not set correctly, must be set when multi Server or HCCL INTRA ROCE "
     "ENABLE enabled", "hccn-conf-not-mounted"),
    ("#6455", "zmq.error.ZMQError: Address already in use (addr='tcp://10.0.0.3:30012')",
     "port-in-use"),
    ("#6455", "RuntimeError: KV Cache sending/receiving thread failed to start.",
     "mooncake-kv-port-reserved"),
    ("#8938", "ERROR 04-25 08:00:01 [mooncake_connector.py:366] Mooncake KVCacheSendingThread "
     "exception: Address already in use", "mooncake-kv-port-reserved"),
    ("#5635", "E0106 11:02:03.100000 77 ascend_direct_transport.cpp:820] Failed to connect to "
     "target: 10.0.0.3:16017, status: 103900", "mooncake-ascend-direct-connect"),
    ("#5635", "ERROR [mooncake_connector.py:1244] Mooncake transfer failed, ret: -1",
     "mooncake-transfer-failed"),
    ("#6949", "ImportError: ascend_transport.so: cannot open shared object file: No such file "
     "or directory", "mooncake-transport-so"),
    ("#7401", "Connect timeout to: 10.0.0.3:20033, you can increase the timeout duration to "
     "reduce the ASCEND_CONNECT_TIMEOUT environment variable.", "mooncake-connect-timeout"),
    ("#7401", "E0327 ascend_direct_transport.cpp:402] Transfer slice failed with status: 103902",
     "mooncake-connect-timeout"),
    ("#13934", "HcclBatchGet: AICPU launch failed, ErrorNo: 103900", "hccl-batchget-aicpu"),
    ("kvcache-ai/Mooncake#3267", "ADXL open one-sided channel failed, status: 503900",
     "adxl-channel-503900"),
    ("#5461", "Get_Socket_Timeout(EI0006): Getting socket times out. Reason: 1. IP addresses "
     "are not on the same network segment or the TLS configurations are inconsistent.",
     "hccl-socket-timeout"),
    ("#9447", "[hccl_socket_manager.cc:980][Wait][LinkEstablish]wait socket establish timeout, "
     "role[server] rank[1] timeout[120 s]", "hccl-socket-timeout"),
    ("#10591", "[ERROR] HCCL(5,python3) Transport init error! createLink para:rank[0]-localUserrank"
     "[0]-localIpAddr[10.0.0.3], dstRank[8]-remoteUserrank[8]-remoteIpAddr[10.0.0.4]",
     "hccl-socket-timeout"),
    ("#9428", "RuntimeError: aclInit failed, error code 107001", "acl-init-invalid-device"),
    ("#12170", "400 Bad Request for url 'http://10.0.0.3:8100/v1/completions'\n"
     'INFO:     10.0.0.9:4 - "POST /v1/completions HTTP/1.1" 500 Internal Server Error',
     "proxy-masked-4xx"),
    ("#8545", "WARNING - Attempt 1 failed for streaming /chat/completions: \n" * 5,
     "proxy-overload-retry"),
]


@pytest.mark.parametrize(("issue", "text", "entry_id"), FIELD_STRINGS,
                         ids=[f"{i}-{e}" for i, _, e in FIELD_STRINGS])
def test_each_reported_string_names_its_entry(issue: str, text: str, entry_id: str) -> None:
    assert [m.id for m in diagnose_text(text, issue)] == [entry_id]
    refs = load_catalogue().get(entry_id).refs
    assert any(issue in r for r in refs), f"{entry_id} should cite {issue}"


def _shm_lines(n: int) -> str:
    return "".join(
        "INFO [shm_broadcast.py:542] No available shared memory broadcast block found in "
        "60 seconds. This typically happens when some processes are hanging\n" for _ in range(n))


def test_a_slow_start_is_not_a_stuck_engine() -> None:
    # Compilation at start-up prints the warning too; without the RPC timeout it is noise.
    assert diagnose_text(_shm_lines(5), "p.log") == []


def test_one_warning_then_a_timeout_is_not_the_repeated_wait() -> None:
    text = _shm_lines(1) + "EngineDeadError: EngineCore encountered an issue.\n"
    assert diagnose_text(text, "p.log") == []
    (match,) = diagnose_text(_shm_lines(3) + "EngineDeadError: x\n", "p.log")
    assert match.id == "engine-stuck-collective"
    assert match.count == 3


@pytest.mark.parametrize("name", ["engine-stuck-collective.log",
                                  "engine-stuck-collective.cuda.log"])
def test_the_seed_crash_is_recognised_on_ascend_and_cuda(name: str) -> None:
    (match,) = diagnose_text((DATA / name).read_text(encoding="utf-8"), name)
    assert match.id == "engine-stuck-collective"
    assert "RPC call to sample_tokens timed out" in (match.then_line or "")
    # What to check first is the collective's network, not the timeout.
    fix = match.entry.fix
    assert fix.index("SOCKET_IFNAME") < fix.index("VLLM_RPC_TIMEOUT")
    assert "kv-transfer-config" in fix
