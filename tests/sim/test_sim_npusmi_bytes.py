"""The simulated npu-smi against the reference captures, byte for byte."""

from __future__ import annotations

import dataclasses
import re

from tests.captures import sample

from ascend_pd.npusmi.parse import parse_info
from ascend_pd.sim.cluster import SimDevice, SimHost, generate_cluster
from ascend_pd.sim.npusmi_core import simulate_npu_smi


def lines_of(name: str, *, skip: int = 0) -> list[str]:
    """The sample's lines after ``skip`` leading ones, without `...` elision lines."""
    return [ln for ln in sample(name).splitlines()[skip:] if ln.strip() != "..."]


def host_like(capture: str, *, soc: str, chip_name: str = "910B3") -> SimHost:
    """A host whose devices carry the metrics printed in ``capture`` (its expected output)."""
    info = parse_info("".join(f"{ln}\n" for ln in capture.splitlines() if ln.strip() != "..."))
    devices = [
        SimDevice(phy_id=c.phy_id if c.phy_id is not None else c.card, card=c.card,
                  chip=c.chip if soc == "a3" else 0, bus_id=c.bus_id,
                  power_w=c.power_w or 0.0, temp_c=c.temp_c or 0, hbm_used_mb=c.hbm_used_mb,
                  hbm_total_mb=c.hbm_total_mb)
        for c in info.chips
    ]
    return SimHost(name="n0", address="192.0.0.1", soc=soc,  # type: ignore[arg-type]
                   npu_smi_version=info.version or "", chip_name=chip_name, devices=devices)


def smi(host: SimHost, *args: str) -> tuple[int, str]:
    reply = simulate_npu_smi(["npu-smi", *args], host)
    assert reply.stderr == ""  # npu-smi prints everything on stdout
    return reply.exit_code, reply.stdout


def test_info_a2_24_1_device_table() -> None:
    capture = sample("s5.1_npu_smi_info_a2_24.1.0.3.txt")
    code, out = smi(host_like(capture, soc="a2"), "info")
    assert code == 0
    assert out.startswith(capture)  # the capture stops before the process table


def test_info_a2_25_5_2_complete() -> None:
    capture = sample("s5.1_npu_smi_info_a2_25.5.2.txt")
    assert smi(host_like(capture, soc="a2", chip_name="910B4"), "info") == (0, capture)


def test_info_a3_complete() -> None:
    capture = sample("s5.2_npu_smi_info_a3_24.1.rc3.7.txt")
    code, out = smi(host_like(capture, soc="a3"), "info")
    # The capture elides NPUs 2..6 of the process table with a `...` line.
    out = re.sub(r"\| No running processes found in NPU [2-6] +\|\n\+=+\+=+\+=+\+\n", "", out)
    assert (code, out) == (0, "".join(f"{ln}\n" for ln in lines_of(
        "s5.2_npu_smi_info_a3_24.1.rc3.7.txt")))


def test_info_l() -> None:
    a2 = generate_cluster([("n0", "x")], "a2").hosts[0]
    code, out = smi(a2, "info", "-l")
    # The sample elides cards 2..6 with one `...` line and ends before the final blank line.
    out = re.sub(r"\tNPU ID +: [2-6]\n\tChip Count +: 1\n\n", "", out)
    assert (code, out) == (0, sample("s5.3_info_l_a2.txt").replace("...\n", "\n") + "\n")
    a3 = generate_cluster([("n0", "x")], "a3").hosts[0]
    head = "".join(f"{ln}\n" for ln in lines_of("s5.3_info_l_a3.txt"))
    assert smi(a3, "info", "-l")[1].startswith(head)


def test_info_m_a2_and_a3() -> None:
    a2 = dataclasses.replace(generate_cluster([("n0", "x")], "a2", 2).hosts[0],
                             chip_name="910B4")
    assert smi(a2, "info", "-m") == (0, sample("s5.4_info_m_a2.txt"))
    a3 = generate_cluster([("n0", "x")], "a3").hosts[0]
    assert smi(a3, "info", "-m")[1].startswith(sample("s5.4_info_m_a3.txt"))


def test_spod_info() -> None:
    a3 = dataclasses.replace(generate_cluster([("n0", "x")], "a3").hosts[0], server_index=4)
    assert smi(a3, "info", "-t", "spod-info", "-i", "0", "-c", "0") == (
        0, sample("s5.5_spod_info_rendered.txt"))
    a2 = generate_cluster([("n0", "x")], "a2").hosts[0]
    assert smi(a2, "info", "-t", "spod-info", "-i", "0", "-c", "0") == (
        0, sample("s5.5_spod_info_a2_unsupported.txt"))


def test_board_field_order() -> None:
    lines = sample("s5.6_board_a2_a3_truncated.txt").splitlines()
    a2 = dataclasses.replace(generate_cluster([("n0", "x")], "a2").hosts[0], chip_name="910B4")
    assert smi(a2, "info", "-t", "board", "-i", "0", "-c", "0")[1].startswith(
        "".join(f"{ln}\n" for ln in lines[1:5]))
    a3 = generate_cluster([("n0", "x")], "a3").hosts[0]
    assert smi(a3, "info", "-t", "board", "-i", "0", "-c", "0")[1].startswith(
        "".join(f"{ln}\n" for ln in lines[6:10]))
    code, card_level = smi(a2, "info", "-t", "board", "-i", "0")
    assert code == 0
    assert "PCI Device ID                  : 0xD802" in card_level


def test_errors_on_stdout() -> None:
    host = generate_cluster([("n0", "x")], "a2").hosts[0]
    # npucli: bad -i / -c print on stdout and exit 215 (-9001 & 0xFF)
    assert smi(host, "info", "-t", "board", "-i", "9") == (215, "Invalid card id.\n")
    assert smi(host, "info", "-t", "board", "-i", "0", "-c", "3") == (215, "Invalid chip id.\n")
    code, out = smi(host, "info", "-t", "nonsense", "-i", "0")
    assert code != 0
    assert out == 'Error parameter in querying chip info, type: "nonsense".\n'
    code, out = smi(host, "info", "-t", "board")
    assert code != 0
    assert out == "This command must input card id.\n"
