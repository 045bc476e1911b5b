"""Device facts collected from one host: the input of ranktable building.

The same records are written by ``gen-ranktable --collect-only`` (air-gapped sites) and read
back by ``--from``, so the JSON form here is a file format: keep it stable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ascend_pd.errors import UsageError

FACTS_FORMAT: Final[str] = "ascend-pd/device-facts/v1"


@dataclass(frozen=True)
class DeviceFacts:
    """What one NPU reports. ``device_ip`` is the RoCE IP on A2 and the vNIC IP on A3."""

    device_id: int
    card: int
    chip: int
    device_ip: str | None
    #: why device_ip is missing (the tool's own message), when it is
    ip_error: str | None = None
    super_device_id: str | None = None
    super_pod_id: str | None = None
    server_index: str | None = None


@dataclass
class HostFacts:
    """Everything gen-ranktable needs from one host, or why it could not be collected."""

    host: str
    address: str
    soc: Literal["a2", "a3"] | None = None
    #: physical device id -> facts (only the devices that were asked for)
    devices: dict[int, DeviceFacts] = field(default_factory=dict)
    #: every device id the host has (from npu-smi info -m)
    present: list[int] = field(default_factory=list)
    #: IPv4 addresses configured on the host (for the server_id check); None = unknown
    addresses: list[str] | None = None
    #: collection failure (unreachable host, tool missing); the other fields are then partial
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["devices"] = [asdict(d) for d in self.devices.values()]
        return {"format": FACTS_FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<facts>") -> HostFacts:
        if data.get("format") != FACTS_FORMAT:
            raise UsageError(
                f"{source} is not an ascend-pd device-facts file (format {data.get('format')!r})",
                hint="create it on the host with `ascend-pd gen-ranktable --collect-only -o FILE`",
            )
        try:
            devices = {int(d["device_id"]): DeviceFacts(**d) for d in data["devices"]}
            return cls(
                host=data["host"], address=data["address"], soc=data.get("soc"),
                devices=devices, present=[int(x) for x in data.get("present", [])],
                addresses=data.get("addresses"), error=data.get("error"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{source}: malformed device-facts file ({exc})",
                             hint="re-run --collect-only on that host") from exc


def load_facts(path: str | Path) -> HostFacts:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read device facts {p}: {exc}",
                         hint="pass files written by `gen-ranktable --collect-only`") from exc
    return HostFacts.from_dict(data, source=str(p))
