"""npu-smi parsers, SoC detection and the SDID layout on the reference samples."""

from __future__ import annotations

import pytest
from tests.captures import sample

from ascend_pd.errors import ParseError
from ascend_pd.npusmi.parse import (
    NpuSmiToolError,
    parse_board,
    parse_info,
    parse_list,
    parse_mapping,
    parse_spod,
)
from ascend_pd.npusmi.soc import detect_soc, sdid_decode, sdid_encode


def without_ellipsis(text: str) -> str:
    return "".join(ln + "\n" for ln in text.splitlines() if ln.strip() != "...")


class TestInfo:
    def test_a2_24_1(self) -> None:
        info = parse_info(sample("s5.1_npu_smi_info_a2_24.1.0.3.txt"))
        assert (info.version, info.soc, len(info.chips)) == ("24.1.0.3", "a2", 8)
        first = info.chips[0]
        assert (first.card, first.name, first.health, first.bus_id) == (0, "910B3", "OK",
                                                                      "0000:C1:00.0")
        assert (first.power_w, first.temp_c, first.hbm_used_mb, first.hbm_total_mb) == (
            98.9, 38, 3382, 65536)
        assert first.phy_id is None

    def test_a2_25_5_2_with_process_section(self) -> None:
        info = parse_info(sample("s5.1_npu_smi_info_a2_25.5.2.txt"))
        assert [c.chip for c in info.chips] == [0, 1]
        assert info.chips[0].hbm_total_mb == 32768
        assert info.processes == ()

    def test_a3_dies_phy_ids_and_missing_power(self) -> None:
        info = parse_info(without_ellipsis(sample("s5.2_npu_smi_info_a3_24.1.rc3.7.txt")))
        assert info.soc == "a3"
        assert [c.phy_id for c in info.chips] == list(range(16))
        assert [(c.card, c.chip) for c in info.chips][:3] == [(0, 0), (0, 1), (1, 0)]
        assert info.chips[1].power_w is None
        assert info.chips[15].bus_id == "0000:83:00.0"

    def test_five_digit_hbm_without_space_and_process_rows(self) -> None:
        text = sample("s5.1_npu_smi_info_a2_25.5.2.txt").replace(
            "2922 / 32768", "49290/ 65536", 1).replace(
            "| No running processes found in NPU 0                                          "
            "                  |",
            "| 0       0                 | 3428811       | python3.10               "
            "| 56600                   |")
        info = parse_info(text)
        assert (info.chips[0].hbm_used_mb, info.chips[0].hbm_total_mb) == (49290, 65536)
        assert info.processes == ((0, 0, 3428811, "python3.10", 56600),)

    def test_99_column_build(self) -> None:
        text = sample("s5.1_npu_smi_info_a2_24.1.0.3.txt").replace(
            "Hugepages-Usage(page)|", "Hugepages-Usage(page) |")
        assert len(parse_info(text).chips) == 8

    def test_error_text_and_garbage(self) -> None:
        with pytest.raises(NpuSmiToolError):
            parse_info("Invalid card id.\n", "", 215)
        with pytest.raises(ParseError) as info:
            parse_info("command not found\n")
        assert info.value.line == "command not found"


class TestListAndMapping:
    def test_list_a2_and_a3(self) -> None:
        a2 = parse_list(without_ellipsis(sample("s5.3_info_l_a2.txt")))
        assert (a2.total_count, a2.cards) == (8, ((0, 1), (1, 1), (7, 1)))
        assert parse_list(without_ellipsis(sample("s5.3_info_l_a3.txt"))).cards == ((0, 2),)

    def test_mapping_a2_uses_npu_id_and_drops_mcu(self) -> None:
        mapping = parse_mapping(sample("s5.4_info_m_a2.txt"))
        assert mapping.soc == "a2"
        assert mapping.phy_ids == (0, 1)
        assert mapping.devices[0].name == "Ascend 910B4"
        assert sum(r.is_mcu for r in mapping.rows) == 2

    def test_mapping_a3_uses_the_phy_id_column(self) -> None:
        mapping = parse_mapping(sample("s5.4_info_m_a3.txt"))
        assert mapping.soc == "a3"
        assert [(d.card, d.chip, d.phy_id) for d in mapping.devices] == [(0, 0, 0), (0, 1, 1),
                                                                         (1, 0, 2)]

    def test_non_contiguous_npu_ids(self) -> None:
        text = sample("s5.4_info_m_a2.txt").replace("\t0 ", "\t8 ").replace("\t1 ", "\t9 ")
        assert parse_mapping(text).phy_ids == (8, 9)

    def test_duplicate_ids_are_rejected(self) -> None:
        lines = sample("s5.4_info_m_a3.txt").splitlines()
        with pytest.raises(ParseError, match="repeats"):
            parse_mapping("\n".join([*lines, lines[1]]) + "\n")


class TestBoardAndSpod:
    def test_board_soc_names(self) -> None:
        lines = sample("s5.6_board_a2_a3_truncated.txt").splitlines()
        a2 = parse_board("\n".join(lines[1:5]) + "\n")
        a3 = parse_board("\n".join(lines[6:10]) + "\n")
        assert (a2.soc_name, a3.soc_name) == ("Ascend910B4", "Ascend910_9392")

    @pytest.mark.parametrize("name", ["s5.5_spod_info_rendered.txt",
                                      "s5.5_spod_info_shmem_doc_bare.txt"])
    def test_spod_padded_and_bare(self, name: str) -> None:
        spod = parse_spod(sample(name))
        assert (spod.supported, spod.sdid, spod.super_pod_size, spod.super_pod_id,
                spod.server_index) == (True, 16777216, 384, 0, 4)

    def test_spod_table_style(self) -> None:
        spod = parse_spod("| SDID : 104857600 | Super Pod ID : 3 | Pod ID : 1 |\n")
        assert (spod.sdid, spod.super_pod_id) == (104857600, 3)

    def test_spod_unsupported_exit_0(self) -> None:
        spod = parse_spod(sample("s5.5_spod_info_a2_unsupported.txt"), "", 0)
        assert not spod.supported
        assert spod.sdid is None


class TestSocAndSdid:
    def test_detect_from_each_output(self) -> None:
        assert detect_soc(info=parse_info(sample("s5.1_npu_smi_info_a2_24.1.0.3.txt"))) == "a2"
        assert detect_soc(mapping=parse_mapping(sample("s5.4_info_m_a3.txt"))) == "a3"
        assert detect_soc(spod=parse_spod(sample("s5.5_spod_info_a2_unsupported.txt"))) == "a2"
        listing = parse_list(without_ellipsis(sample("s5.3_info_l_a3.txt")))
        assert detect_soc(listing=listing) == "a3"

    def test_disagreement_and_nothing(self) -> None:
        with pytest.raises(ParseError, match="disagree"):
            detect_soc(mapping=parse_mapping(sample("s5.4_info_m_a3.txt")),
                       spod=parse_spod(sample("s5.5_spod_info_a2_unsupported.txt")))
        with pytest.raises(ParseError):
            detect_soc()

    @pytest.mark.parametrize(("server", "card", "die", "sdid"), [
        (4, 0, 0, 16777216), (25, 0, 0, 104857600), (25, 0, 1, 104923137),
        (25, 1, 0, 105119746), (25, 2, 0, 105381892),
    ])
    def test_published_values_round_trip(self, server: int, card: int, die: int,
                                         sdid: int) -> None:
        assert sdid_encode(server, card, die) == sdid
        decoded = sdid_decode(sdid)
        assert (decoded.server_index, decoded.card, decoded.die) == (server, card, die)
        assert decoded.device_id == 2 * card + die
        assert decoded.consistent

    def test_ranges(self) -> None:
        with pytest.raises(ValueError):
            sdid_encode(48, 0, 0)
        with pytest.raises(ValueError):
            sdid_encode(0, 8, 0)
        with pytest.raises(ValueError):
            sdid_encode(0, 0, 2)
