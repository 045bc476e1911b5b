"""A `kubectl` stand-in for the launch/status/stop tests (no API server can run here).

It records every call (JSONL in $FAKE_KUBECTL_LOG) and keeps the "cluster" in a JSON file
($FAKE_KUBECTL_STATE). `apply -k DIR` builds DIR with the real `kubectl kustomize` and
validates every object the way tests/k8s/validators.py does (strict schemas, CRD schemas);
a problem fails the apply like an API server would; `apply -f -` does the same with the
objects on stdin. `rollout status`/`wait` succeed unless the target is listed in
$FAKE_KUBECTL_FAIL_WAIT; `get` reports the applied workloads ready; `delete` removes objects.

`exec -i -n NS POD -- ARGV` runs ARGV on this machine as if inside POD: the pod must have
been applied (else kubectl's NotFound error), a pod named in $FAKE_KUBECTL_DEAD_PODS has no
running container (kubectl's upgrade error), and the node is the pod's `nodeName`: the
command sees the simulated cluster $FAKE_KUBECTL_SIM_CLUSTER as that host, and an absolute
`.../hccn_tool` or `.../npu-smi` is the stand-in in $FAKE_KUBECTL_TOOLS (what the pod's
driver mount holds on a real node). A non-zero exit gets kubectl's `command terminated
with exit code N` line on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ["FAKE_KUBECTL_ROOT"])

KINDS = {"pod": "Pod", "configmap": "ConfigMap", "service": "Service", "statefulset": "StatefulSet",
         "deployment": "Deployment", "leaderworkersets.leaderworkerset.x-k8s.io":
         "LeaderWorkerSet", "podgroups.scheduling.volcano.sh": "PodGroup"}


def load() -> dict[str, Any]:
    path = Path(os.environ["FAKE_KUBECTL_STATE"])
    return json.loads(path.read_text()) if path.is_file() else {}


def save(state: dict[str, Any]) -> None:
    Path(os.environ["FAKE_KUBECTL_STATE"]).write_text(json.dumps(state))


def ref(target: str) -> str:
    resource, _, name = target.partition("/")
    return f"{KINDS[resource]}/{name}"


def main(argv: list[str]) -> int:
    with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    state = load()
    if argv[:1] == ["exec"]:
        # First and lean: check-links runs hundreds of these (no validator imports).
        return exec_in_pod(state, argv)
    import yaml

    from tests.k8s.validators import kustomize, problems

    if argv[:1] == ["kustomize"]:
        objs = kustomize(Path(argv[1]))
        print("---\n".join(json.dumps(o) for o in objs))
        return 0
    if argv[:1] == ["apply"]:
        objs = (kustomize(Path(argv[2])) if argv[1] == "-k"
                else [o for o in yaml.safe_load_all(sys.stdin.read()) if o])  # -f -
        bad = [f"{o['kind']}/{o['metadata']['name']}: {p}" for o in objs for p in problems(o)]
        if bad:
            print("\n".join(f"error: {b}" for b in bad), file=sys.stderr)
            return 1
        for obj in objs:
            key = f"{obj['kind']}/{obj['metadata']['name']}"
            print(f"{key.lower()} created")
            state[key] = obj
        save(state)
        return 0
    fail = os.environ.get("FAKE_KUBECTL_FAIL_WAIT", "")
    if argv[:2] == ["rollout", "status"] or argv[:1] == ["wait"]:
        targets = [a for a in argv if "/" in a and not a.startswith("--")]
        for target in targets:
            if ref(target) not in state:
                print(f'Error from server (NotFound): "{target}" not found', file=sys.stderr)
                return 1
            if fail and fail in target:
                print(f"error: timed out waiting for the condition on {target}",
                      file=sys.stderr)
                return 1
        for target in targets:
            print(f'"{target}" successfully rolled out' if argv[0] == "rollout"
                  else f"{target} condition met")
        return 0
    if argv[:1] == ["get"]:
        items = []
        for target in (a for a in argv if "/" in a):
            obj = state.get(ref(target))
            if obj is not None:
                replicas = obj["spec"].get("replicas", 1)
                items.append({**obj, "status": {"readyReplicas": replicas}})
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        return 0
    if argv[:1] == ["delete"]:
        for target in (a for a in argv if "/" in a):
            if state.pop(ref(target), None) is not None:
                print(f'{target} deleted')
        save(state)
        return 0
    print(f"fake kubectl: unsupported {argv}", file=sys.stderr)
    return 2


def exec_in_pod(state: dict[str, Any], argv: list[str]) -> int:
    split = argv.index("--")
    words, command = argv[1:split], argv[split + 1:]
    pod = next(w for i, w in enumerate(words)
               if not w.startswith("-") and words[i - 1] not in ("-n", "-c"))
    obj = state.get(f"Pod/{pod}")
    if obj is None:
        print(f'Error from server (NotFound): pods "{pod}" not found', file=sys.stderr)
        return 1
    if pod in os.environ.get("FAKE_KUBECTL_DEAD_PODS", "").split(","):
        name = obj["spec"]["containers"][0]["name"]
        print(f'error: unable to upgrade connection: container not found ("{name}")',
              file=sys.stderr)
        return 1
    tools = Path(os.environ["FAKE_KUBECTL_TOOLS"])
    mapped = [str(tools / Path(w).name) if w.startswith("/") and Path(w).name in
              ("hccn_tool", "npu-smi") else w for w in command]
    env = {**os.environ, "ASCEND_PD_SIM_CLUSTER": os.environ["FAKE_KUBECTL_SIM_CLUSTER"],
           "ASCEND_PD_SIM_HOST": obj["spec"]["nodeName"]}
    done = subprocess.run(mapped, env=env, stdin=sys.stdin, check=False)
    if done.returncode != 0:
        print(f"command terminated with exit code {done.returncode}", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
