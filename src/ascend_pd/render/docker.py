"""The ``docker run`` prefix for hosts with ``runtime: docker``.

Every host device node is passed (not only the instance's), so in-container device numbers
stay the physical ids the ranktable and ASCEND_RT_VISIBLE_DEVICES use (pain point #2). The
driver, dcmi, npu-smi, /etc/hccn.conf and hccn_tool are mounted: without hccn.conf the server
starts and then produces wrong output (#7711), so the script also refuses to start without it.
"""

from __future__ import annotations

from typing import Final

from ascend_pd.runners.factory import tool_paths
from ascend_pd.spec.models import ClusterSpec, HostSpec

DRIVER_DIR: Final[str] = "/usr/local/Ascend/driver"
DCMI_DIR: Final[str] = "/usr/local/dcmi"
NPU_SMI: Final[str] = "/usr/local/bin/npu-smi"
HCCN_CONF: Final[str] = "/etc/hccn.conf"
CONTROL_DEVICES: Final[tuple[str, ...]] = ("/dev/davinci_manager", "/dev/devmm_svm",
                                           "/dev/hisi_hdc")


def container_name(spec: ClusterSpec, host: HostSpec, instance: str) -> str:
    """A docker name unique per instance and host (docker allows ``[A-Za-z0-9_.-]``)."""
    prefix = host.docker.name_prefix if host.docker else "ascend-pd"
    return f"{prefix}-{instance}-{host.name}"


def docker_argv(
    spec: ClusterSpec, host: HostSpec, instance: str, env_keys: list[str]
) -> list[str]:
    """``docker run …  IMAGE`` (the server argv follows it); env values come from the caller's
    environment via ``-e KEY`` so they are never re-quoted for docker."""
    assert host.docker is not None
    docker = host.docker
    npu_smi = host.npu_smi if host.npu_smi and host.npu_smi.startswith("/") else NPU_SMI
    hccn_tool = tool_paths(host)[0]  # spec > $HCCN_TOOL_PATH > default, like every command
    argv = ["docker", "run", "--rm", "--name", container_name(spec, host, instance),
            "--net=host", f"--shm-size={docker.shm_size}"]
    argv += [f"--device=/dev/davinci{dev}" for dev in host.devices]
    argv += [f"--device={dev}" for dev in CONTROL_DEVICES]
    mounts = [(DRIVER_DIR, "ro"), (DCMI_DIR, "ro"), (npu_smi, "ro"), (HCCN_CONF, "ro"),
              (hccn_tool, "ro"), (spec.model.path, "ro")]
    if spec.connector.type == "llmdatadist":
        mounts.append((spec.connector.ranktable_path, "ro"))
    seen: set[str] = set()
    for path, mode in mounts:
        if path not in seen:
            seen.add(path)
            argv += ["-v", f"{path}:{path}:{mode}"]
    for key in env_keys:
        argv += ["-e", key]
    return [*argv, *docker.extra_args, docker.image]
