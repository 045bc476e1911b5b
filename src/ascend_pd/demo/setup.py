"""Build the demo's world: a simulated 2-host A2 cluster on loopback and its spec.

The spec deploys what a user deploys today: the connector section is the one ``ascend-pd
init`` writes for its default shape (Mooncake on the newest stable release of the packaged
release data), so the demo moves with ``init`` and the release data, never on its own.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from ascend_pd.errors import UsageError
from ascend_pd.examples import DEFAULT_SHAPE, example_spec
from ascend_pd.sim.cluster import generate_cluster, save_cluster
from ascend_pd.sim.faults import apply_fault
from ascend_pd.sim.install import install_tools

#: Two "hosts" on this machine: every 127/8 address is local on Linux, no root needed.
HOSTS: Final[tuple[tuple[str, str], ...]] = (("node-p", "127.0.0.2"), ("node-d", "127.0.0.3"))
MODEL: Final[str] = "qwen3-8b-demo"


@dataclass(frozen=True)
class DemoWorld:
    workdir: Path
    spec_path: Path
    #: the sim cluster file (None: real vLLM, ``demo --real``)
    cluster_path: Path | None
    proxy_url: str
    ports: dict[str, int]
    model: str = MODEL


def free_port(address: str, avoid: set[int]) -> int:
    """A TCP port free on ``address`` right now and not in ``avoid`` (the kernel picks it)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind((address, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port
    raise UsageError("no free TCP port found on loopback", hint="free some ports and retry")


def check_loopback() -> None:
    for _name, address in HOSTS:
        try:
            with socket.socket() as sock:
                sock.bind((address, 0))
        except OSError as exc:
            raise UsageError(
                f"cannot bind {address} ({exc.strerror}): the demo needs 127.0.0.2 and .3",
                hint="on Linux every 127.x address is local; on other systems add them to lo",
            ) from exc


def init_connector() -> dict[str, Any]:
    """The ``connector:`` section ``ascend-pd init`` writes for its default shape."""
    section: dict[str, Any] = yaml.safe_load(example_spec(DEFAULT_SHAPE))["connector"]
    return section


def build_world(workdir: Path) -> DemoWorld:
    """Write the sim cluster file, the stand-in tools and a 1P1D A2 spec into ``workdir``."""
    check_loopback()
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = workdir / "sim-cluster.yaml"
    save_cluster(generate_cluster(list(HOSTS)), cluster)
    # The fault the demo's check-links finds and fixes: one decode device with TLS on, the
    # classic cause of EI0016 / link-setup timeouts an hour into a deployment.
    apply_fault(cluster, HOSTS[1][0], "tls-on", device=3)
    tools = install_tools(workdir / "bin")
    connector = init_connector()
    # The kernel's free ports must not land in the Mooncake kv_port ranges the plan claims
    # on the same hosts (instances' bases are 100 apart): validate would call it a clash.
    kv_base = int(connector.get("kv_port_base", 36000))
    used: set[int] = set(range(kv_base, kv_base + 1000))
    ports = {}
    for key, address in (("prefill", HOSTS[0][1]), ("decode", HOSTS[1][1]),
                         ("proxy", HOSTS[0][1])):
        ports[key] = free_port(address, used)
        used.add(ports[key])
    devices = list(range(8))
    spec = {
        "version": 1,
        "name": "demo-a2-1p1d",
        "hardware": "a2",
        "backend": "local",
        "hosts": [
            {"name": name, "address": address, "nic": "lo", "devices": devices,
             "hccn_tool": str(tools["hccn_tool"]), "npu_smi": str(tools["npu-smi"]),
             # Which simulated host the stand-in tools answer for (all run on this machine).
             "env": {"ASCEND_PD_SIM_CLUSTER": str(cluster), "ASCEND_PD_SIM_HOST": name}}
            for name, address in HOSTS
        ],
        "model": {"path": "/models/Qwen3-8B", "served_name": MODEL, "max_model_len": 16384,
                  "attention": "gqa"},
        "connector": connector,
        "prefill": [{"name": "prefill-0", "hosts": ["node-p"], "devices": devices, "tp": 8,
                     "port": ports["prefill"]}],
        "decode": [{"name": "decode-0", "hosts": ["node-d"], "devices": devices, "tp": 8,
                    "port": ports["decode"], "max_num_seqs": 32}],
        "proxy": {"host": "node-p", "port": ports["proxy"], "bind": HOSTS[0][1]},
        "sim": {"cluster": str(cluster), "prefill_ms_per_1k_tokens": 20.0,
                "decode_ms_per_token": 2.0},
        "state_dir": str(workdir / "state"),
    }
    spec_path = workdir / "pd.yaml"
    spec_path.write_text("# written by `ascend-pd demo`: a simulated 2-host Atlas A2 cluster; "
                         "the connector is init's default\n"
                         + yaml.safe_dump(spec, sort_keys=False))
    return DemoWorld(workdir, spec_path, cluster, f"http://{HOSTS[0][1]}:{ports['proxy']}", ports)
