"""The nvidia-smi stand-in: the layouts of the real captures, faults from the cluster file,
and the same bytes in-process (backend sim) and as a process (install-tools wrapper)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.nvidiasmi import parse_gpu_csv, parse_versions, query_gpus
from ascend_pd.sim.cluster import SimCluster, SimGpus, SimHost, save_cluster
from ascend_pd.sim.install import install_tools
from ascend_pd.sim.nvsmi_core import gpu_uuid, simulate_nvidia_smi
from ascend_pd.sim.runner import make_sim_runner

DATA = Path(__file__).resolve().parents[1] / "data" / "nvidia-smi"


def host(**gpus: Any) -> SimHost:
    return SimHost(name="gpu0", address="192.0.2.21", gpus=SimGpus(**gpus))


def bars(line: str) -> list[int]:
    return [i for i, c in enumerate(line) if c in "|+"]


def test_summary_has_the_r580_layout_of_the_capture() -> None:
    real = (DATA / "summary-580-a100.txt").read_text().splitlines()
    sim = simulate_nvidia_smi(["nvidia-smi"], host(
        model="NVIDIA A100-SXM4-40GB", count=2, memory_mib=40960)).stdout.splitlines()
    # rule, version header, grid and column titles: byte for byte
    assert sim[1:8] == real[1:8]
    # every GPU line: same width and the same column borders as the real table
    for ours, theirs in zip(sim[8:15], real[8:15], strict=True):
        assert (len(ours), bars(ours)) == (len(theirs), bars(theirs)), (ours, theirs)
    assert sim[8][:45] == real[8][:45]  # "|   0  NVIDIA A100-SXM4-40GB          On  |"
    processes = (DATA / "summary-580-t4-processes.txt").read_text().splitlines()[12:16]
    assert sim[16:20] == processes  # blank line, rule, "Processes:", the column titles
    assert parse_versions("\n".join(sim)).cuda == "13.0"


def test_query_lists_present_gpus_renumbered() -> None:
    reply = simulate_nvidia_smi(query_gpus(), host(count=8, missing=[3]))
    assert reply.exit_code == 0
    gpus = parse_gpu_csv(reply.stdout)
    assert [g.index for g in gpus] == list(range(7))
    # the GPU in slot 4 is now index 3: its identity (UUID) moved with it
    assert gpus[3].uuid == gpu_uuid("gpu0", 4)
    assert reply.stdout.splitlines()[0].endswith(", 81920 MiB, 580.126.09")


def test_header_units_and_bad_fields_like_nvidia_smi() -> None:
    h = host(count=1)
    with_header = simulate_nvidia_smi(
        ["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv"], h).stdout
    assert with_header.splitlines() == ["index, memory.total [MiB]", "0, 81920 MiB"]
    bare = simulate_nvidia_smi(
        ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"], h).stdout
    assert bare == "81920\n"
    bad = simulate_nvidia_smi(["nvidia-smi", "--query-gpu=index,bogus", "--format=csv"], h)
    assert (bad.exit_code, bad.stdout) == (2, 'Field "bogus" is not a valid field to query.\n\n')


def test_nvml_mismatch_and_no_driver() -> None:
    real = (DATA / "nvml-mismatch-535.txt").read_text()
    reply = simulate_nvidia_smi(["nvidia-smi"], host(nvml_library_version="535.161"))
    assert (reply.exit_code, reply.stdout) == (18, real)
    none = simulate_nvidia_smi(["nvidia-smi"], SimHost(name="n", address="192.0.2.9"))
    assert none.exit_code == 9
    assert "couldn't communicate with the NVIDIA driver" in none.stdout


def test_same_bytes_in_process_and_as_a_process(tmp_path: Path) -> None:
    cluster = tmp_path / "sim.yaml"
    save_cluster(SimCluster(hosts=[host(count=4, missing=[1], driver_version="535.104.05",
                                        cuda_version="12.2")]), cluster)
    in_process = make_sim_runner(cluster, "gpu0").run(list(query_gpus()), timeout=10)
    tools = install_tools(tmp_path / "bin", cluster=cluster, host="gpu0")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCEND_PD_SIM")}
    proc = subprocess.run([str(tools["nvidia-smi"]), *query_gpus()[1:]], capture_output=True,
                          text=True, timeout=60, env=env, check=False)
    assert (proc.returncode, proc.stdout) == (in_process.exit_code, in_process.stdout)
    assert [g.driver_version for g in parse_gpu_csv(proc.stdout)] == ["535.104.05"] * 3


def test_gpu_faults_from_the_cli_and_their_clear(tmp_path: Path) -> None:
    cluster = tmp_path / "sim.yaml"
    save_cluster(SimCluster(hosts=[host(count=4)]), cluster)
    runner = make_sim_runner(cluster, "gpu0")

    def fault(*args: str) -> None:
        result = CliRunner().invoke(cli, ["sim", "fault", "--cluster", str(cluster), "--host",
                                          "gpu0", *args])
        assert result.exit_code == 0, result.output

    def listed() -> list[int]:
        return [g.index for g in parse_gpu_csv(runner.run(list(query_gpus()), timeout=5).stdout)]

    fault("--kind", "gpu-missing", "--device", "2")
    assert listed() == [0, 1, 2]
    fault("--kind", "gpu-missing", "--device", "2", "--clear")
    assert listed() == [0, 1, 2, 3]
    fault("--kind", "gpu-driver", "--value", "470.256.02/11.4")
    versions = parse_versions(runner.run(["nvidia-smi"], timeout=5).stdout)
    assert (versions.driver, versions.cuda) == ("470.256.02", "11.4")
    fault("--kind", "gpu-driver", "--clear")
    assert parse_versions(runner.run(["nvidia-smi"], timeout=5).stdout).cuda == "13.0"
    fault("--kind", "nvml-mismatch")
    assert runner.run(["nvidia-smi"], timeout=5).exit_code == 18
    fault("--kind", "nvml-mismatch", "--clear")
    assert runner.run(["nvidia-smi"], timeout=5).exit_code == 0
    bad = CliRunner().invoke(cli, ["sim", "fault", "--cluster", str(cluster), "--host", "gpu0",
                                   "--kind", "gpu-missing"])
    assert bad.exit_code == 2 and "--device SLOT" in bad.output
