"""The JSON documented in docs/json.md is what the commands print.

Each command runs for real (the CLI over the simulated cluster / sysroot, like the other
tests) and its envelope and ``data`` are checked against the JSON Schemas in
docs/schemas/, picked by the ``schema`` field the data names. A shape change that is not
a documented version bump fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from click.testing import CliRunner
from referencing import Registry, Resource

from ascend_pd.cli import cli
from ascend_pd.doctor.simroot import build_sysroot
from ascend_pd.examples import example_spec
from ascend_pd.sim.faults import apply_fault
from tests.doctor.conftest import free_port
from tests.doctor.conftest import write_spec as write_doctor_spec
from tests.netcheck.conftest import a2

__all__ = ["a2"]  # the check-links fixture: 2 simulated A2 hosts, backend sim

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "docs" / "schemas"
DIAGNOSE_DATA = Path(__file__).resolve().parent / "data" / "diagnose"


def _schemas() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")}


REGISTRY: Registry[Any] = Registry().with_resources(
    (doc["$id"], Resource.from_contents(doc)) for doc in _schemas().values())


def _check(doc: dict[str, Any], schema_file: str) -> None:
    schema = _schemas()[schema_file]
    validator = jsonschema.Draft202012Validator(schema, registry=REGISTRY)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def _run(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert "Traceback" not in result.output, result.output
    doc = json.loads(result.output)
    _check(doc, "envelope.v1.json")
    return result.exit_code, doc


def check_data(data: dict[str, Any]) -> None:
    """Check a command's ``data`` against the schema file its ``schema`` field names."""
    command, version = re.fullmatch(r"ascend-pd/([a-z0-9-]+)/v(\d+)", data["schema"]).groups()  # type: ignore[union-attr]
    _check(data, f"{command}.v{version}.json")


def _data(doc: dict[str, Any]) -> dict[str, Any]:
    """Check the envelope's ``data`` against its schema and return it."""
    check_data(doc["data"])
    return doc["data"]  # type: ignore[no-any-return]


def test_every_documented_schema_is_listed_in_json_md_and_has_its_id() -> None:
    text = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    for name, doc in _schemas().items():
        assert f"(schemas/{name})" in text, f"docs/json.md does not link {name}"
        command, version = re.fullmatch(r"([a-z0-9-]+)\.v(\d+)\.json", name).groups()  # type: ignore[union-attr]
        assert doc["$id"] == f"urn:ascend-pd:{command}:v{version}"
        jsonschema.Draft202012Validator.check_schema(doc)


def test_validate_findings_carry_their_yaml_line(tmp_path: Path) -> None:
    spec = tmp_path / "pd.yaml"
    text = example_spec("a2-1p1d")
    data = yaml.safe_load(text)
    data["connector"] = {"type": "llmdatadist", "vllm_ascend_version": "0.23.0"}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    line = next(i for i, row in enumerate(spec.read_text().splitlines(), 1)
                if row.strip().startswith("type: llmdatadist"))
    code, doc = _run("validate", "-c", str(spec))
    assert code == 1 and doc["status"] == "findings"
    found = _data(doc)
    assert not found["valid"]
    connector = [f for f in found["findings"] if f["where"].get("key") == "connector.type"]
    assert connector and connector[0]["where"]["line"] == line
    assert connector[0]["severity"] == "error" and connector[0]["check"] == "connector"
    human = CliRunner().invoke(cli, ["validate", "-c", str(spec)]).output
    assert f"error: connector.type (line {line}): vllm-ascend 0.23.0 has no LLMDataDist" in human


def test_a_spec_error_lists_its_findings_in_the_envelope(tmp_path: Path) -> None:
    spec = tmp_path / "pd.yaml"
    data = yaml.safe_load(example_spec("a2-1p1d"))
    data["decode"][0]["devices"] = data["prefill"][0]["devices"]
    data["decode"][0]["hosts"] = data["prefill"][0]["hosts"]
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    code, doc = _run("validate", "-c", str(spec))
    assert code == 2 and doc["data"] is None
    (error,) = doc["errors"]
    assert error["type"] == "SpecError"
    assert error["findings"] and all(f["where"]["line"] >= 1 for f in error["findings"])
    assert error["problems"][0].startswith(error["findings"][0]["where"]["key"] + " (line ")


def test_render_and_render_k8s(tmp_path: Path) -> None:
    spec = tmp_path / "pd.yaml"
    spec.write_text(example_spec("a2-1p1d"))
    code, doc = _run("render", "-c", str(spec), "-o", str(tmp_path / "deploy"))
    assert code == 0
    assert _data(doc)["processes"] >= 2
    code, doc = _run("render", "-c", str(spec), "--target", "k8s", "-o", str(tmp_path / "k8s"))
    assert code == 0
    assert _data(doc)["target"] == "k8s"


def test_check_links_and_verify(a2: tuple[Path, Path], tmp_path: Path) -> None:
    spec, cluster = a2
    apply_fault(cluster, "node-d", "tls-on", device=3)
    code, doc = _run("check-links", "-c", str(spec), "--ping", "plane")
    assert code == 1
    data = _data(doc)
    (tls,) = [f for f in data["findings"] if f["check"] == "tls"]
    assert tls["where"] == {"host": "node-d", "device": 3}
    out = tmp_path / "rt.json"
    assert CliRunner().invoke(cli, ["gen-ranktable", "-c", str(spec), "-o", str(out)]
                              ).exit_code == 0
    table = json.loads(out.read_text())
    table["prefill_device_list"][2]["device_ip"] = "29.10.1.99"
    out.write_text(json.dumps(table))
    code, doc = _run("gen-ranktable", "-c", str(spec), "--verify", str(out))
    assert code == 1
    (drift,) = _data(doc)["drift"]
    assert (drift["check"], drift["where"]["device"]) == ("device_ip_changed", 2)


def test_a_ranktable_error_lists_its_findings(a2: tuple[Path, Path], tmp_path: Path) -> None:
    spec, cluster = a2
    apply_fault(cluster, "node-d", "no-ip", device=3)
    code, doc = _run("gen-ranktable", "-c", str(spec), "-o", str(tmp_path / "rt.json"))
    assert code == 13
    (error,) = doc["errors"]
    assert [(f["check"], f["where"]) for f in error["findings"]] == [
        ("no_ip", {"host": "node-d", "device": 3})]


def test_doctor(tmp_path: Path) -> None:
    host = build_sysroot(tmp_path / "root", faults=["hccn_conf_missing"])
    spec = write_doctor_spec(tmp_path / "pd.yaml", host, ports=[free_port(), free_port()])
    code, doc = _run("doctor", "-c", str(spec), "--backend", "local")
    assert code == 1
    data = _data(doc)
    (node,) = data["hosts"]
    by_check = {f["check"]: f for f in node["findings"]}
    assert by_check["hccn-conf"]["severity"] == "error"
    assert by_check["cann-env"]["severity"] == "pass"
    assert data["summary"]["error"] >= 1 and data["summary"]["pass"] >= 10


def test_diagnose() -> None:
    code, doc = _run("diagnose", str(DIAGNOSE_DATA / "tls-inconsistent.log"))
    assert code == 1
    (found,) = _data(doc)["findings"]
    assert found["check"] == "tls-inconsistent"
    assert found["where"]["file"].endswith("tls-inconsistent.log") and found["where"]["line"] > 1
    assert "EI0016" in found["evidence"][0] and found["verify"].startswith("ascend-pd ")
    code, doc = _run("diagnose", str(DIAGNOSE_DATA / "clean.log"))
    assert code == 0 and _data(doc)["clean"]
