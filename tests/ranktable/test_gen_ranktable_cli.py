"""`ascend-pd gen-ranktable` end to end: simulated hosts in-process, as real processes, and
over SSH in the namespace rig. Every written table is checked against the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.examples import example_spec
from ascend_pd.resources import data_dir
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.sim.faults import apply_fault
from ascend_pd.sim.install import install_tools

SCHEMA = json.loads((data_dir("ranktable") / "schema.json").read_text())


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def write_spec(path: Path, shape: str, **changes: Any) -> Path:
    data = yaml.safe_load(example_spec(shape))
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def a2_pair(tmp_path: Path) -> tuple[Path, Path]:
    cluster = tmp_path / "sim.yaml"
    save_cluster(generate_cluster([("node-p", "192.0.2.11"), ("node-d", "192.0.2.12")]), cluster)
    spec = write_spec(tmp_path / "pd.yaml", "a2-1p1d", sim={"cluster": "sim.yaml"},
                      backend="sim")
    return spec, cluster


def test_a2_two_hosts_in_process(a2_pair: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ = a2_pair
    out = tmp_path / "rt.json"
    result = run("gen-ranktable", "-c", str(spec), "-o", str(out))
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    jsonschema.validate(table, SCHEMA)
    assert [e["device_ip"] for e in table["decode_device_list"]][:2] == ["29.10.2.1", "29.10.2.2"]
    assert "node-d (192.0.2.12)  decode" in result.output
    assert out.read_text().startswith('{\n    "version": "1.2",\n    "server_count": "2",')


def test_a2_one_host_prefill_and_decode_as_real_processes(tmp_path: Path) -> None:
    cluster = tmp_path / "sim.yaml"
    save_cluster(generate_cluster([("node0", "127.0.0.1")]), cluster)
    tools = install_tools(tmp_path / "bin", cluster=cluster, host="node0")
    data = yaml.safe_load(example_spec("a2-1p1d-single"))
    data["hosts"][0].update(address="127.0.0.1", hccn_tool=str(tools["hccn_tool"]),
                            npu_smi=str(tools["npu-smi"]))
    spec = tmp_path / "pd.yaml"
    spec.write_text(yaml.safe_dump(data))
    out = tmp_path / "rt.json"
    result = run("gen-ranktable", "-c", str(spec), "-o", str(out), "--backend", "local", "--json")
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    jsonschema.validate(table, SCHEMA)
    assert table["server_count"] == "1"
    assert [e["device_id"] for e in table["prefill_device_list"]] == ["0", "1", "2", "3"]
    assert [e["cluster_id"] for e in table["decode_device_list"]] == ["5", "6", "7", "8"]
    assert json.loads(result.output)["data"]["path"] == str(out)


def test_no_ip_fails_with_13_and_keeps_existing_file(a2_pair: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    spec, cluster = a2_pair
    out = tmp_path / "rt.json"
    out.write_text("previous table\n")
    apply_fault(cluster, "node-d", "no-ip", device=3)
    result = run("gen-ranktable", "-c", str(spec), "-o", str(out))
    assert result.exit_code == 13
    assert "node-d device 3: no device IP configured (Get ipconf failed" in result.output
    assert "hccn_tool -i 3 -ip -s address" in result.output
    assert out.read_text() == "previous table\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rt.json")] == []


def test_drift_check(a2_pair: tuple[Path, Path], tmp_path: Path) -> None:
    spec, cluster = a2_pair
    out = tmp_path / "rt.json"
    assert run("gen-ranktable", "-c", str(spec), "-o", str(out)).exit_code == 0
    same = run("gen-ranktable", "-c", str(spec), "--verify", str(out))
    assert same.exit_code == 0
    assert "matches the live hosts" in same.output
    table = json.loads(out.read_text())
    table["prefill_device_list"][2]["device_ip"] = "29.10.1.99"
    table["decode_device_list"][0]["server_id"] = "192.0.2.12"
    table["decode_device_list"].append(dict(table["decode_device_list"][0], device_id="9"))
    out.write_text(json.dumps(table))
    apply_fault(cluster, "node-d", "no-ip", device=5)
    drift = run("gen-ranktable", "-c", str(spec), "--verify", str(out), "--json")
    assert drift.exit_code == 1
    kinds = {(d["check"], d["where"]["device"])
             for d in json.loads(drift.output)["data"]["drift"]}
    assert kinds == {("device_ip_changed", 2), ("missing_device", 9), ("device_ip_missing", 5)}


def test_wrong_server_id_is_reported(a2_pair: tuple[Path, Path], tmp_path: Path) -> None:
    spec, cluster = a2_pair
    data = yaml.safe_load(cluster.read_text())
    data["hosts"][1]["address"] = "192.0.2.99"  # the host's real address differs from the spec
    cluster.write_text(yaml.safe_dump(data))
    result = run("gen-ranktable", "-c", str(spec), "-o", str(tmp_path / "rt.json"))
    assert result.exit_code == 5
    assert "server_id 192.0.2.12 is not an address of the host" in result.output


def test_collect_only_then_from_files(a2_pair: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ = a2_pair
    files = []
    for host in ("node-p", "node-d"):
        path = tmp_path / f"{host}.json"
        result = run("gen-ranktable", "-c", str(spec), "--collect-only", "--host", host,
                     "-o", str(path), "--backend", "sim")
        assert result.exit_code == 0, result.output
        files.append(str(path))
    out = tmp_path / "rt.json"
    result = run("gen-ranktable", "-c", str(spec), "--from", *files, "-o", str(out))
    assert result.exit_code == 0, result.output
    direct = tmp_path / "direct.json"
    run("gen-ranktable", "-c", str(spec), "-o", str(direct))
    assert out.read_text() == direct.read_text()


@pytest.mark.parametrize("command", ["gen-ranktable", "check-links"])
def test_usage_errors_exit_2(a2_pair: tuple[Path, Path], command: str) -> None:
    assert run(command).exit_code == 2
    result = run(command, "--ips", "10.0.0.1")
    assert result.exit_code == 2
    assert "--ips needs --prefill-device-cnt and --decode-device-cnt" in result.output
    result = run(command, "-c", str(a2_pair[0]), "--ips", "10.0.0.1")
    assert result.exit_code == 2
    assert "give either -c SPEC or --ips, not both" in result.output


@pytest.mark.rig
def test_a3_two_hosts_over_ssh_rig(rig: Any, tmp_path: Path) -> None:
    h1, h2 = rig.hosts[0], rig.hosts[1]
    save_cluster(generate_cluster([(h1.name, h1.address), (h2.name, h2.address)], soc="a3",
                                  first_server_index=25), rig.sim_cluster)
    tools = install_tools(rig.tools_dir)
    hosts = [dict(h, devices=list(range(16)), hccn_tool=str(tools["hccn_tool"]),
                  npu_smi=str(tools["npu-smi"])) for h in rig.spec_hosts()[:2]]
    data = yaml.safe_load(example_spec("a3-seed"))
    data.update(hosts=hosts, ssh=rig.ssh_spec(), backend="ssh")
    data["prefill"][0]["hosts"] = [h1.name]
    data["decode"][0]["hosts"] = [h2.name]
    data["proxy"]["host"] = h1.name
    spec = tmp_path / "pd.yaml"
    spec.write_text(yaml.safe_dump(data))
    out = tmp_path / "rt.json"
    result = run("gen-ranktable", "-c", str(spec), "-o", str(out))
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    jsonschema.validate(table, SCHEMA)
    first = table["prefill_device_list"][1]
    assert list(first) == ["server_id", "device_id", "device_ip", "super_pod_id",
                           "super_device_id", "cluster_id"]
    assert first["super_device_id"] == "104923137"  # server 25, card 0, die 1 (reference)
    assert first["device_ip"] == "192.168.25.198"
    assert table["decode_device_list"][0]["server_id"] == h2.address


@pytest.mark.rig
def test_legacy_flags_over_ssh_rig(rig: Any, tmp_path: Path) -> None:
    h1, h3 = rig.hosts[0], rig.hosts[2]  # both on port 22 (one --ssh-port for all --ips)
    save_cluster(generate_cluster([(h1.name, h1.address), (h3.name, h3.address)]),
                 rig.sim_cluster)
    install_tools(rig.tools_dir)
    out = tmp_path / "ranktable.json"
    result = run("gen-ranktable", "--ips", h1.address, h3.address, "--npus-per-node", "8",
                 "--network-card-name", "eth0", "--prefill-device-cnt", "8",
                 "--decode-device-cnt", "8", "--ssh-key", str(rig.key_path),
                 "--known-hosts", str(rig.known_hosts), "--ranktable-path", str(out),
                 "--backend", "ssh",
                 env={"HCCN_TOOL_PATH": str(rig.tools_dir / "hccn_tool")})
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    assert [e["server_id"] for e in table["prefill_device_list"]] == [h1.address] * 8
    assert [e["server_id"] for e in table["decode_device_list"]] == [h3.address] * 8


def test_a_spec_whose_connector_reads_no_rank_table_gets_a_warning(
        a2_pair: tuple[Path, Path], tmp_path: Path) -> None:
    # init's default shape: Mooncake on the newest stable release reads no rank table; the
    # table is still written, with a warning (exit 0) that names the connector.
    spec, _ = a2_pair
    out = tmp_path / "rt.json"
    result = run("gen-ranktable", "-c", str(spec), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert out.is_file()
    (warning,) = json.loads(result.output)["data"]["warnings"]
    assert warning["severity"] == "warning"
    assert (warning["where"]["key"], warning["check"]) == ("connector.type", "ranktable-unused")
    assert "MooncakeConnectorV1 (mooncake) reads no rank table" in warning["message"]
    assert "only LLMDataDist reads a rank table (vllm-ascend 0.9.1rc2 … 0.11.0)" in warning["fix"]
    human = run("gen-ranktable", "-c", str(spec), "-o", str(out)).output
    assert "warning: connector.type: connector MooncakeConnectorV1" in human


def test_llmdatadist_on_a_release_that_reads_one_gets_no_warning(
        a2_pair: tuple[Path, Path], tmp_path: Path) -> None:
    cluster = tmp_path / "sim.yaml"
    spec = write_spec(tmp_path / "legacy.yaml", "a2-1p1d-legacy-llmdatadist",
                      sim={"cluster": str(cluster)}, backend="sim")
    result = run("gen-ranktable", "-c", str(spec), "-o", str(tmp_path / "rt.json"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data"]["warnings"] == []
    newer = yaml.safe_load(spec.read_text())
    newer["connector"]["vllm_ascend_version"] = "0.13.0"
    spec.write_text(yaml.safe_dump(newer))
    result = run("gen-ranktable", "-c", str(spec), "-o", str(tmp_path / "rt.json"), "--json")
    (warning,) = json.loads(result.output)["data"]["warnings"]
    assert warning["where"]["key"] == "connector.vllm_ascend_version"
    assert "vllm-ascend 0.13.0 reads no rank table" in warning["message"]
    assert "connector.type: mooncake" in warning["fix"]
