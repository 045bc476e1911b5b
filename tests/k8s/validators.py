"""Offline validation of rendered manifests (no API server can run here).

* built-in kinds: ``kubernetes-validate`` in strict mode (a misspelled field is an error)
  against Kubernetes 1.29 and the newest schema it ships; a kind it has no schema for is an
  error here, never a silent pass;
* custom resources: the CRD's own ``openAPIV3Schema`` (tests/k8s/data), with unknown fields
  rejected unless the schema says ``x-kubernetes-preserve-unknown-fields``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

DATA = Path(__file__).parent / "data"
VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
CRDS = {
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): "lws-v0.10.0-leaderworkerset-v1",
    ("scheduling.volcano.sh/v1beta1", "PodGroup"): "volcano-v1.15.1-podgroup-v1beta1",
}


def kubectl() -> str:
    path = shutil.which("kubectl")
    assert path, "kubectl is missing: scripts/bootstrap installs it (Debian kubernetes-client)"
    return path


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR`` (offline), as objects."""
    out = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _strict(schema: Any) -> Any:
    # The apiserver prunes/rejects unknown fields of structural schemas: model that by
    # closing every object that lists its properties, unless it preserves unknown fields.
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        if out.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_validator(name: str) -> jsonschema.Draft7Validator:
    doc = json.loads((DATA / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(_strict(doc["openAPIV3Schema"]))


def problems(obj: dict[str, Any]) -> list[str]:
    """Every validation problem of one object (empty = valid)."""
    kind = (obj.get("apiVersion"), obj.get("kind"))
    if kind in CRDS:
        return [f"{kind[1]} {'.'.join(map(str, e.absolute_path))}: {e.message}"
                for e in crd_validator(CRDS[kind]).iter_errors(obj)]
    out = []
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            out.append(f"{kind[1]} on {version}: {err.message} at {list(err.path)}")
        except kubernetes_validate.SchemaNotFoundError as err:
            out.append(f"{kind[1]} on {version}: no schema ({err}); it would pass unchecked")
    return out
