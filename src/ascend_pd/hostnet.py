"""Host network facts: which IPv4 addresses sit on which NIC (`ip -o -4 addr show`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

IP_ADDR_ARGV: Final[tuple[str, ...]] = ("ip", "-o", "-4", "addr", "show")
_LINE = re.compile(r"^\d+:\s+(?P<ifname>[^\s:@]+)\S*\s+inet\s+(?P<addr>[\d.]+)/(?P<prefix>\d+)")


@dataclass(frozen=True)
class HostAddress:
    ifname: str
    address: str
    prefix: int


def parse_ip_addr(stdout: str) -> list[HostAddress]:
    """Parse `ip -o -4 addr show`; lines that are not inet entries are ignored."""
    found = []
    for line in stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            found.append(HostAddress(match["ifname"], match["addr"], int(match["prefix"])))
    return found
