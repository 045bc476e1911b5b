"""Classify a failed hccn_tool call into a typed record.

Exit statuses collide (1, 2, 3, 4 and 13 each have several meanings: the process status is
the low byte of an internal UDA code), so classification goes by message first and falls
back to the exit code only when no known message is present.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final, Protocol

from ascend_pd.errors import RunnerError


class ToolOutput(Protocol):
    """Anything carrying a finished command's streams and status (e.g. ``CommandResult``)."""

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...

    @property
    def exit_code(self) -> int: ...


@dataclass(frozen=True)
class _Known:
    kind: str
    message: str
    exit_code: int
    hint: str


# Message -> kind, with the exit status the current driver gives it and what to do.
_KNOWN: Final[tuple[_Known, ...]] = (
    _Known("busy", "hccn_tool is busy, please try again.", 11,
           "another hccn_tool call holds the lock; retry, or run set commands one at a time"),
    _Known("not_supported", "The command is not supported on this product.", 13,
           "this board does not offer the command (e.g. -hccs_ping outside A3 SuperPoD boards)"),
    _Known("no_ip", "Get ipconf failed, because no ip was preset there!", 13,
           "configure it: hccn_tool -i N -ip -s address A netmask M"),
    _Known("no_gateway", "Get gateway failed, because no gateway was preset there!", 2,
           "hccn_tool -i N -gateway -s gateway G"),
    _Known("no_certificate", "No certificate found, please set certs firstly!", 14,
           "no TLS certificates: TLS is effectively off on this device"),
    _Known("invalid_device", "Get invalid device id.", 4,
           "the -i value must be a physical chip id present on this host (npu-smi info -m)"),
    _Known("permission", "permission denied: pls check this cmd run permission.", 12,
           "run hccn_tool as root"),
    _Known("device_not_exist", "The device is not exist!", 4,
           "the device is missing from the driver; check npu-smi info and dmesg"),
    _Known("unknown_option", "Get unknown option!", 3, "check the sub-option (-g / -s)"),
    _Known("wrong_arg_count", "The total count of input parameters is wrong!", 4,
           "check the command's arguments (hccn_tool -h)"),
    _Known("invalid_major_cmd_type",
           'Get invalid major cmd type. The valid major cmd type should be "-a" or "-i".', 1,
           "the first argument must be -i or -a"),
    _Known("invalid_major_cmd_number", "Get invalid major cmd number. Please check your input.",
           2, "check the number of arguments"),
    _Known("invalid_major_cmd", "Get invalid major cmd.", 3,
           "unknown -<attr>; see hccn_tool -h"),
    _Known("invalid_param_len", "Get invalid input param len.", 5, "an argument is too long"),
    _Known("invalid_parameters", "Get invalid parameters!", 1, "check the arguments"),
    _Known("invalid_ip", "The ip address you configured is invalid!", 6, "give a valid IPv4"),
    _Known("ip_conflict", "The ip address configured is conflicted!", 7,
           "the address is used elsewhere or lies in a reserved vNIC range"),
    _Known("gateway_subnet",
           "The segment of configured gateway doesn't match that of the configured ip adress!",
           8, "the gateway must be inside the device IP's subnet"),
    _Known("invalid_enable", "Get invalid enable value!", 16, "enable takes 0 or 1"),
    _Known("gateway_without_ip", "Unable to configure gateway, because ip is not configured!",
           26, "set the device IP first"),
    _Known("conf_access",
           "The hccn.conf can't access, cmd execute failed! pls check the conf file or cmd run "
           "permission.", 29, "check /etc/hccn.conf exists and is writable by root"),
    _Known("device_occupied", "The device is occupied. Please try again later.", 31,
           "the device is busy with another HCCS ping; retry later"),
    _Known("broadcast", "Can not config broadcast address!", 37,
           "netdetect must be a host address"),
    _Known("health_timeout", "Get device health status failed!", 3,
           "the device did not answer; check npu-smi info"),
    _Known("control_link_unreachable", "Control link unreachable.", 15,
           "SuperPoD optics control link is down"),
    _Known("optical_absent", "Optical module is not present.", 20, "seat the optical module"),
    _Known("link_down", "Execute failed: Link status is down.", 22,
           "bring the link up: check cable/optics, then hccn_tool -i N -link -s up"),
    _Known("timeout", "The cmd line execute timeout!", 1, "the device did not answer in time"),
    _Known("execute_failed", "Command execute failed!", 1,
           "the driver call failed; check the device (npu-smi info) and the link"),
)


@dataclass(frozen=True)
class HccnFailure:
    """A classified hccn_tool failure.

    Attributes:
        kind: stable name (``busy``, ``no_ip``, ``invalid_device``, ``execute_failed``, ...,
            or ``unknown`` when neither message nor exit code is recognised).
        message: the tool's message line (or the first non-empty output line).
        exit_code: the process exit status.
        hint: what to do about it.
        stdout / stderr: the raw streams.
    """

    kind: str
    message: str
    exit_code: int
    hint: str
    stdout: str = ""
    stderr: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def classify(stdout: str, stderr: str, exit_code: int) -> HccnFailure:
    """Classify a failed call from its streams; see :func:`classify_error`."""
    for known in _KNOWN:
        if known.message in stderr or known.message in stdout:
            return HccnFailure(known.kind, known.message, exit_code, known.hint, stdout, stderr)
    first = next((ln.strip() for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()), "")
    # No known message: fall back on the code, preferring the most common meaning.
    by_code = {11: "busy", 12: "permission", 14: "no_certificate", 22: "link_down",
               26: "gateway_without_ip", 29: "conf_access", 31: "device_occupied"}
    kind = by_code.get(exit_code, "unknown")
    hint = next((k.hint for k in _KNOWN if k.kind == kind), "see the raw output")
    return HccnFailure(kind, first, exit_code, hint, stdout, stderr)


def classify_error(result: ToolOutput) -> HccnFailure:
    """Map a failed ``CommandResult`` to a :class:`HccnFailure` (message first, then code)."""
    return classify(result.stdout, result.stderr, result.exit_code)


class HccnToolError(RunnerError):
    """hccn_tool ran and failed in a way that is not data (busy, bad device, driver error)."""

    def __init__(self, failure: HccnFailure, *, host: str = "", command: str = "") -> None:
        where = f"{host}: " if host else ""
        what = f"`{command}`" if command else "hccn_tool"
        super().__init__(
            f"{where}{what} exited {failure.exit_code}: {failure.message or failure.kind}",
            host=host, hint=failure.hint,
        )
        self.failure = failure
