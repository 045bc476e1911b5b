"""Pure argv builders for hccn_tool (A2/A3 grammar: ``hccn_tool -i <phy_id> -<attr> -g|-s ...``).

Every builder returns a tuple so it can go straight into a ``runners.fanout.Job``. The
device argument is the chip *physical* id (``npu-smi info -m``), never the npu-smi card id.
"""

from __future__ import annotations

from typing import Final, Literal

#: The query kinds this package parses; also the ``-<attr>`` at argv[3].
Query = Literal[
    "ip", "vnic", "link", "net_health", "netdetect", "gateway", "tls", "lldp", "ping", "hccs_ping"
]
QUERIES: Final[tuple[Query, ...]] = (
    "ip", "vnic", "link", "net_health", "netdetect", "gateway", "tls", "lldp", "ping", "hccs_ping",
)


def _dev(dev: int) -> str:
    if not 0 <= dev <= 99:
        # hccn_tool accepts 1-2 decimal digits; anything else is a caller bug, not data.
        raise ValueError(f"hccn_tool device id must be 0..99, got {dev}")
    return str(dev)


def _get(tool: str, dev: int, attr: str) -> tuple[str, ...]:
    return (tool, "-i", _dev(dev), f"-{attr}", "-g")


def ip_get(tool: str, dev: int) -> tuple[str, ...]:
    """``hccn_tool -i DEV -ip -g``: RoCE IPv4 address and netmask."""
    return _get(tool, dev, "ip")


def vnic_get(tool: str, dev: int) -> tuple[str, ...]:
    """``hccn_tool -i DEV -vnic -g``: A3 vNIC link, address and netmask."""
    return _get(tool, dev, "vnic")


def link_get(tool: str, dev: int) -> tuple[str, ...]:
    """``hccn_tool -i DEV -link -g``: RoCE port link status (UP/DOWN)."""
    return _get(tool, dev, "link")


def net_health_get(tool: str, dev: int) -> tuple[str, ...]:
    """``hccn_tool -i DEV -net_health -g``: result of the background probe to netdetect."""
    return _get(tool, dev, "net_health")


def netdetect_get(tool: str, dev: int) -> tuple[str, ...]:
    """``hccn_tool -i DEV -netdetect -g``: the address net_health probes."""
    return _get(tool, dev, "netdetect")


def gateway_get(tool: str, dev: int) -> tuple[str, ...]:
    """``hccn_tool -i DEV -gateway -g``: default gateway and its ethN interface."""
    return _get(tool, dev, "gateway")


def tls_get(tool: str, dev: int) -> tuple[str, ...]:
    """``hccn_tool -i DEV -tls -g``: TLS switch, preset flag and certificate info."""
    return _get(tool, dev, "tls")


def tls_set(tool: str, dev: int, enable: bool) -> tuple[str, ...]:
    """``hccn_tool -i DEV -tls -s enable 0|1`` (needs root; persists in /etc/hccn.conf)."""
    return (tool, "-i", _dev(dev), "-tls", "-s", "enable", "1" if enable else "0")


def lldp_get(tool: str, dev: int) -> tuple[str, ...]:
    """``hccn_tool -i DEV -lldp -g``: the switch's LLDP TLVs as seen by the device."""
    return _get(tool, dev, "lldp")


def ping(tool: str, dev: int, address: str, *, pkt: int | None = None) -> tuple[str, ...]:
    """``hccn_tool -i DEV -ping -g address ADDR [pkt LEN]``: 3-packet RoCE ping.

    ``pkt`` is the payload length in bytes (0..65507), not a packet count.
    """
    argv = (*_get(tool, dev, "ping"), "address", address)
    return argv if pkt is None else (*argv, "pkt", str(pkt))


def hccs_ping(
    tool: str, dev: int, address: str, *, count: int | None = None, timeout_ms: int | None = None
) -> tuple[str, ...]:
    """``hccn_tool -i DEV -hccs_ping -g address VNIC_IP [cnt N] [timeout MS]`` (A3 HCCS)."""
    argv: tuple[str, ...] = (*_get(tool, dev, "hccs_ping"), "address", address)
    if count is not None:
        argv = (*argv, "cnt", str(count))
    if timeout_ms is not None:
        argv = (*argv, "timeout", str(timeout_ms))
    return argv


def query_of(argv: tuple[str, ...] | list[str]) -> tuple[Query, int] | None:
    """Recognise a query argv built here: ``(kind, device)``, or None for anything else."""
    if len(argv) < 5 or argv[1] != "-i" or argv[4] != "-g" or not argv[2].isdigit():
        return None
    kind = argv[3][1:]
    for query in QUERIES:
        if query == kind:
            return query, int(argv[2])
    return None
