"""nvidia-smi parsers on real captures (tests/data/nvidia-smi, sources in SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ascend_pd.errors import ParseError
from ascend_pd.nvidiasmi import nvml_error, parse_gpu_csv, parse_versions, query_gpus
from ascend_pd.nvidiasmi.parse import nvml_hint

DATA = Path(__file__).resolve().parents[1] / "data" / "nvidia-smi"


def capture(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "driver", "cuda"), [
    ("summary-580-a100.txt", "580.126.09", "13.0"),
    ("summary-580-t4-processes.txt", "580.126.09", "13.0"),
    ("summary-610-b200.txt", "610.43.02", "13.3"),     # R610: KMD / CUDA UMD Version
    ("summary-470-a10g.txt", "470.256.02", "11.4"),
    ("summary-540-jetson-cuda-na.txt", "540.4.0", None),  # CUDA Version: N/A
    ("summary-390-no-cuda-field.txt", "390.59", None),   # no CUDA field; driver != NVIDIA-SMI
])
def test_driver_and_cuda_from_the_summary_header(name: str, driver: str, cuda: str | None) -> None:
    versions = parse_versions(capture(name))
    assert (versions.driver, versions.cuda) == (driver, cuda)


def test_nvml_mismatch_is_a_parse_error_that_says_reboot() -> None:
    text = capture("nvml-mismatch-535.txt")
    assert nvml_error(text) == "Failed to initialize NVML: Driver/library version mismatch"
    with pytest.raises(ParseError) as err:
        parse_versions(text)
    assert err.value.line == "Failed to initialize NVML: Driver/library version mismatch"
    assert "reboot" in (err.value.hint or "")
    assert nvml_hint("Failed to initialize NVML: Unknown Error") is not None
    assert nvml_error(capture("summary-580-a100.txt")) is None


def test_query_csv_index_name_uuid() -> None:
    gpus = parse_gpu_csv(capture("query-gpu-index-name-uuid.csv"), ("index", "name", "uuid"))
    assert [g.index for g in gpus] == [0, 1, 2, 3, 4, 5]
    assert gpus[2].name == "NVIDIA H100 80GB HBM3"
    assert gpus[3].name == "Tesla T4"
    assert gpus[0].uuid == "GPU-89fdc1e1-18b2-f499-c12b-82bcb9bfb3fa"
    assert gpus[0].memory_mib is None


def test_query_csv_with_header_and_other_field_order() -> None:
    fields = ("compute_cap", "compute_mode", "driver_version", "name", "index")
    gpus = parse_gpu_csv(capture("query-gpu-header-triton.csv"), fields)
    assert [(g.index, g.name, g.driver_version) for g in gpus] == [
        (0, "NVIDIA TITAN V", "570.86.15"), (1, "NVIDIA RTX 5880 Ada Generation", "570.86.15")]


def test_query_csv_memory_with_unit() -> None:
    fields = ("index", "name", "memory.total", "driver_version")
    (gpu,) = parse_gpu_csv(capture("query-gpu-memory-a100.csv"), fields)
    assert (gpu.name, gpu.memory_mib, gpu.driver_version) == (
        "NVIDIA A100 80GB PCIe", 81920, "580.173.02")


def test_an_error_message_instead_of_csv_quotes_the_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_gpu_csv(capture("nvml-mismatch-535.txt"))
    assert err.value.line.startswith("Failed to initialize NVML")


def test_the_query_doctor_runs() -> None:
    assert query_gpus("/usr/bin/nvidia-smi") == (
        "/usr/bin/nvidia-smi", "--query-gpu=index,name,uuid,memory.total,driver_version",
        "--format=csv,noheader")
