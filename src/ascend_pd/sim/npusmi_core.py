"""The pure core of the simulated npu-smi: ``argv + host -> SimReply`` (everything on stdout).

Layouts copy real captures (vllm-ascend#900 A2, #2667 A3) and npucli/src/npu_info_print.c
of verylucky01/driver@e29d066 (98-column tables; TAB + ``%-30s``
key blocks). Outputs the reference does not show are marked ``[I]`` (inferred).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ascend_pd.sim.cluster import SimDevice, SimHost
from ascend_pd.sim.hccn_core import SimReply

_BAR: Final = "+" + "-" * 96 + "+"
_HEAD_SEP: Final = "+" + "-" * 27 + "+" + "-" * 15 + "+" + "-" * 52 + "+"
_CARD_SEP: Final = "+" + "=" * 27 + "+" + "=" * 15 + "+" + "=" * 52 + "+"
_HEADER_1: Final = (
    "| NPU   Name                | Health        | Power(W)    Temp(C)           "
    "Hugepages-Usage(page)|"
)
_HEADER_2_A2: Final = (
    "| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  "
    "HBM-Usage(MB)        |"
)
_HEADER_2_A3: Final = (
    "| Chip  Phy-ID              | Bus-Id        | AICore(%)   Memory-Usage(MB)  "
    "HBM-Usage(MB)        |"
)
_PROC_HEADER: Final = (
    "| NPU     Chip              | Process id    | Process name             "
    "| Process memory(MB)      |"
)
#: npu-smi exits with the low byte of -9001 for a bad card or chip id
BAD_ID_EXIT: Final = 215


def _kv(key: str, value: object) -> str:
    return f"\t{key:<30} : {value}\n"


def _cards(host: SimHost) -> dict[int, list[SimDevice]]:
    cards: dict[int, list[SimDevice]] = {}
    for dev in sorted(host.devices, key=lambda d: (d.card, d.chip)):
        cards.setdefault(dev.card, []).append(dev)
    return cards


def _power(host: SimHost, dev: SimDevice) -> str:
    # 910_93 die 1 does not report power.
    return "-" if host.soc == "a3" and dev.chip == 1 else f"{dev.power_w:.1f}"


def _a2_chip(host: SimHost, dev: SimDevice) -> int:
    # [I] 24.x prints 0 on every A2 chip row; the 25.5.2 capture prints 0, 1 (taken here
    # to be the physical id; reference open question 8).
    return dev.phy_id if host.npu_smi_version.startswith("25.") else dev.chip


def render_info(host: SimHost) -> str:
    """``npu-smi info``: the device table, then the process table."""
    a3 = host.soc == "a3"
    name = "Ascend910" if a3 else host.chip_name
    lines = [
        _BAR,
        "| " + f"npu-smi {host.npu_smi_version}".ljust(33)
        + f"Version: {host.npu_smi_version}".ljust(62) + "|",
        _HEAD_SEP, _HEADER_1, _HEADER_2_A3 if a3 else _HEADER_2_A2, _CARD_SEP,
    ]
    cards = _cards(host)
    for card, devs in cards.items():
        for i, dev in enumerate(devs):
            lines.append(f"| {card:<6}{name:<20}| {dev.health:<14}| {_power(host, dev):<12}"
                         f"{dev.temp_c:<18}{0:<5}/ {0:<14}|")
            chip_cell = f"{dev.chip:<6}{dev.phy_id:<20}" if a3 else f"{_a2_chip(host, dev):<26}"
            lines.append(f"| {chip_cell}| {dev.bus_id:<14}| {0:<12}{0:<5}/ {0:<11}"
                         f"{dev.hbm_used_mb:<5}/ {dev.hbm_total_mb:<14}|")
            lines.append(_BAR if i + 1 < len(devs) else _CARD_SEP)
    lines += [_HEAD_SEP, _PROC_HEADER, _CARD_SEP]
    for card in cards:
        lines.append("| " + f"No running processes found in NPU {card}".ljust(95) + "|")
        if a3:
            lines.append(_CARD_SEP)
    if not a3:
        lines.append(_CARD_SEP)
    return "".join(f"{ln}\n" for ln in lines)


def render_list(host: SimHost) -> str:
    """``npu-smi info -l``: Total Count, then NPU ID / Chip Count per card."""
    cards = _cards(host)
    out = [_kv("Total Count", len(cards)), "\n"]
    for card, devs in cards.items():
        out += [_kv("NPU ID", card), _kv("Chip Count", len(devs)), "\n"]
    return "".join(out)


def render_mapping(host: SimHost) -> str:
    """``npu-smi info -m``: one row per chip plus the card's Mcu row."""
    a3 = host.soc == "a3"
    heads = ["NPU ID", "Chip ID", "Chip Logic ID", *(["Chip Phy-ID"] if a3 else []), "Chip Name"]
    # The [S] format pads the last header field too; the captures show it stripped.
    out = ["\t" + " ".join(f"{h:<30}" for h in heads).rstrip() + "\n"]
    logic = 0
    for card, devs in _cards(host).items():
        for dev in devs:
            ids = [card, dev.chip, logic, *([dev.phy_id] if a3 else [])]
            label = "Ascend910" if a3 else f"Ascend {host.chip_name}"
            out.append("\t" + " ".join(f"{v:<30}" for v in ids) + f" {label}\n")
            logic += 1
        mcu = [card, len(devs), "-", *(["-"] if a3 else [])]
        out.append("\t" + " ".join(f"{v:<30}" for v in mcu) + " Mcu\n")
    return "".join(out)


def render_board(host: SimHost, card: int, dev: SimDevice | None, chips: int) -> str:
    """``-t board -i CARD [-c CHIP]``: chip fields (npu_chip_info_ext.c order) or card [I]."""
    a3 = host.soc == "a3"
    if dev is None:
        return "".join([
            _kv("NPU ID", card), _kv("Software Version", host.npu_smi_version),
            _kv("Firmware Version", host.firmware_version), _kv("Compatibility", "OK"),
            _kv("Board ID", "0x02"), _kv("PCB ID", "A"), _kv("BOM ID", "1"),
            _kv("Slot ID", card), _kv("PCI Vendor ID", "0x19E5"),
            _kv("PCI Device ID", "0xD803" if a3 else "0xD802"), _kv("Chip Count", chips),
        ])
    fields: list[tuple[str, object]] = [("NPU ID", card)]
    if a3:
        fields.append(("NPU Name", host.npu_name))
    fields.append(("Chip ID", dev.chip))
    if not a3:
        fields.append(("Chip Type", "Ascend"))
    fields += [
        ("Chip Name", "Ascend910" if a3 else host.chip_name), ("Chip Version", "V1"),
        ("Board ID", "0x02"), ("PCB ID", "A"), ("BOM ID", "1"),
        ("VDie ID", f"{0x3A4B5C00 + dev.phy_id:08X} 20B08A13 0C1D2E3F 00000000 00000000"),
        ("NDie ID", f"{0x1F2E3D00 + dev.phy_id:08X} 10A09B12 4C5D6E7F 00000000 00000000"),
        ("Chip Position ID", dev.phy_id), ("PCIe Bus Info", dev.bus_id),
        ("Firmware Version", host.firmware_version),
    ]
    return "".join(_kv(k, v) for k, v in fields)


def render_spod(host: SimHost, dev: SimDevice) -> str:
    """``-t spod-info`` on A3 (the four fields of the rendered reference sample)."""
    return "".join([
        _kv("SDID", host.sdid(dev)), _kv("Super Pod Size", host.super_pod_size),
        _kv("Super Pod ID", host.super_pod_id), _kv("Server Index", host.server_index),
    ])


def _say(code: int, line: str) -> SimReply:
    return SimReply(code, f"{line}\n")


def simulate_npu_smi(argv: Sequence[str], host: SimHost) -> SimReply:
    """Answer one ``npu-smi`` invocation on ``host``."""
    args = list(argv[1:])
    delay = host.latency.query_s
    if args == ["info"]:
        return SimReply(0, render_info(host), delay_s=delay)
    if args == ["info", "-l"]:
        return SimReply(0, render_list(host), delay_s=delay)
    if args == ["info", "-m"]:
        return SimReply(0, render_mapping(host), delay_s=delay)
    if len(args) < 3 or args[:2] != ["info", "-t"]:
        # [I] the reference does not quote npu-smi's usage text.
        return _say(1, "Usage: npu-smi info [-l | -m | -t <type> -i <card> [-c <chip>]]")
    kind, rest = args[2], args[3:]
    if kind not in ("board", "spod-info"):
        return _say(1, f'Error parameter in querying chip info, type: "{kind}".')
    opts = dict(zip(rest[::2], rest[1::2], strict=False))
    if len(rest) % 2 or set(opts) - {"-i", "-c"}:
        return _say(1, f'Error parameter in querying chip info, type: "{kind}".')
    if "-i" not in opts:
        return _say(1, "This command must input card id.")
    cards = _cards(host)
    card_s = opts["-i"]
    if not card_s.isdigit() or int(card_s) not in cards:
        return _say(BAD_ID_EXIT, "Invalid card id.")
    card = int(card_s)
    chip_s = opts.get("-c")
    dev = None
    if chip_s is not None:
        dev = next((d for d in cards[card] if chip_s.isdigit() and d.chip == int(chip_s)), None)
        if dev is None:
            return _say(BAD_ID_EXIT, "Invalid chip id.")
    if kind == "board":
        return SimReply(0, render_board(host, card, dev, len(cards[card])), delay_s=delay)
    if host.soc != "a3":
        # Not supported is printed and then converted to success: exit 0.
        return SimReply(0, "This device does not support querying spod-info.\n", delay_s=delay)
    if dev is None:
        return _say(BAD_ID_EXIT, "Invalid chip id.")
    return SimReply(0, render_spod(host, dev), delay_s=delay)
