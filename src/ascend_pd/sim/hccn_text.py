"""The exact strings the simulated hccn_tool prints: messages and help blocks.

Text comes from the hccn_tool source (verylucky01/driver@e29d066, hccn/ascend910B/hccn_tool/).
Where the source shows no help text, the block is marked ``[I]`` (inferred).
"""

from __future__ import annotations

from typing import Final

# -- tool.c messages (without the trailing newline the tool's print macros add) ---------
MAJOR_TYPE: Final = (
    'Get invalid major cmd type. The valid major cmd type should be "-a" or "-i".'
)
MAJOR_NUMBER: Final = "Get invalid major cmd number. Please check your input."
MAJOR_CMD: Final = "Get invalid major cmd."
SEE_HELP: Final = "Enter [ hccn_tool -h ] for more details."
INVALID_DEVICE: Final = "Get invalid device id."
PARAM_LEN: Final = "Get invalid input param len."
INVALID_PARAMS: Final = "Get invalid parameters!"
UNKNOWN_OPTION: Final = "Get unknown option!"
ARG_COUNT: Final = "The total count of input parameters is wrong!"
INVALID_IP: Final = "The ip address you configured is invalid!"
IP_CONFLICT: Final = "The ip address configured is conflicted!"
GATEWAY_SUBNET: Final = (
    "The segment of configured gateway doesn't match that of the configured ip adress!"
)
NO_CERT: Final = "No certificate found, please set certs firstly!"
INVALID_ENABLE: Final = "Get invalid enable value!"
BUSY: Final = "hccn_tool is busy, please try again."
PERMISSION: Final = "permission denied: pls check this cmd run permission."
NOT_SUPPORTED: Final = "The command is not supported on this product."
GATEWAY_NO_IP: Final = "Unable to configure gateway, because ip is not configured!"
BROADCAST: Final = "Can not config broadcast address!"
EXEC_FAILED: Final = "Command execute failed!"
NO_GATEWAY: Final = "Get gateway failed, because no gateway was preset there!"
NO_IP: Final = "Get ipconf failed, because no ip was preset there!"
LINK_DOWN: Final = "Execute failed: Link status is down."
SUCCESS: Final = "Cmd executed successfully!"
PRESET_CERT_WARNING: Final = (
    "[Warning] The currently loaded is a preset certificate, which has security risks."
    "It is recommended to configure a security certificate."
)

# -- help blocks, keyed by attr --------------------------------------------------------------
_GATEWAY_HELP = (
    "   [-s]                : set gateway cfg\n"
    "       gateway %s      : set IPv4 gateway, such as x.x.x.x\n"
    "   [-g]                : get gateway address\n"
)
HELP: Final[dict[str, str]] = {
    "ip": (
        "   [-s]                 : set ip cfg\n"
        "       address %s       : set IPv4 ip address, such as x.x.x.x\n"
        "       netmask %s       : set IPv4 ip netmask, such as x.x.x.x\n"
        "   [-g]                 : get ip address and netmask/prefix_length\n"
    ),
    "vnic": "   [-g]        : get vnic link status, ip address and netmask\n",
    "link": (
        "   [-s]                   : set the eth ports link status\n"
        "       down               : shut down eth port\n"
        "       up                 : start up eth port\n"
        "   [-g]                   : get the eth ports link status, UP or DOWN\n"
    ),
    "net_health": "   [-g]        : get net health status\n",
    # The reference's [S] block for -netdetect is the gateway text; reproduced as quoted.
    "netdetect": _GATEWAY_HELP,
    "gateway": _GATEWAY_HELP,
    "tls": (
        "   [-s]        : set tls cfg\n"
        "       enable %d : set tls enable, 0: disable, 1: enable\n"
        "       host      : if you want to set tls enable on host, you need to add host flag"
        " on the tail\n"
        "   [-g]        : get tls cfg\n"
    ),
    "ping": (
        "   [-g]                : get ping result\n"
        "       address %s      : set net detect IPv4 ip address, such as x.x.x.x\n"
        "      pkt %d           : ping cfg, the packet data length, [0 ~ 65507]\n"
    ),
    "hccs_ping": (
        "   [-g]                : get the supernodes ping result\n"
        "       address   %s    : set net detect IPv4 ip address, such as x.x.x.x\n"
        "       or\n"
        "       sdid      %s    : set net detect device sdid value. this value conflicts with"
        " address, one of the two is used\n"
        "       pkt       %d    : ping cfg, the packet data length, [1792 ~ 3000] (byte)"
        " (default 1792)\n"
        "       cnt       %d    : ping cfg, the total count of packet send, [1 ~ 1000]"
        " (default 3)\n"
        "       interval  %d    : ping cfg, the interval between receiving a reply packet and"
        " sending the next packet, [0 ~ 10] (ms) (default 0)\n"
        "       timeout   %d    : ping cfg, the timeout waiting time for each packet,"
        " [1 ~ 20000] (ms)\n"
    ),
    "lldp": "   [-g]        : get lldp cfg\n",
    # [I] no help text for -cfg is quoted in the reference.
    "cfg": "   recovery    : recover the config from /etc/hccn.conf\n",
}


def needs_parameters(attr: str) -> str:
    """The stdout block printed after a parameter error of ``-<attr>``."""
    return f"[ hccn_tool -i devid -{attr} ] needs the following parameters:\n{HELP[attr]}"


def full_help() -> str:
    """``hccn_tool -h``: every command followed by its help block."""
    return "".join(f"hccn_tool -i devid -{attr}\n{text}" for attr, text in HELP.items())


# -- canned LLDP neighbour text (lldptool -t -n layout; values after a TAB) -----------------
def lldp_text(port: str, system_name: str, mac: str, mgmt_ip: str) -> str:
    """The TLV listing a device prints for its switch neighbour."""
    return (
        "Chassis ID TLV\n"
        f"\tMAC: {mac}\n"
        "Port ID TLV\n"
        f"\tIfname: {port}\n"
        "Time to Live TLV\n"
        "\t120\n"
        "System Name TLV\n"
        f"\t{system_name}\n"
        "System Description TLV\n"
        "\tVersatile Routing Platform Software\n"
        "VRP (R) software, Version 8.211 (DX511 V200R021C10SPC600)\n"
        "\n"
        "Huarong DX511\n"
        "\n"
        "System Capabilities TLV\n"
        "\tEnabled capabilities: Bridge, Router\n"
        "Management Address TLV\n"
        f"\tIPv4: {mgmt_ip}\n"
        "Maximum Frame Size TLV\n"
        "\t9216\n"
        "End of LLDPDU TLV\n"
    )


def tls_cert_blocks(dev: int) -> str:
    """Certificate listing after the switch line (format of the HCCL guide sample)."""
    return (
        f"dev_id:{dev}, [pub cert] info:\n"
        "\t issuer[/C=CN/ST=GD/O=HUAWEI/OU=2012/CN=2_1thCA]\n"
        "\t start_time[Wed Feb 19 03:19:21 2020 GMT]\n"
        "\t end_time[Sat Feb 16 03:19:21 2030 GMT]\n"
        f"dev_id:{dev}, [ca1 cert] info:\n"
        "\t issuer[/C=CN/ST=GD/L=SZ/O=HUAWEI/CN=1thCA]\n"
        "\t start_time[Wed Feb 19 03:19:07 2020 GMT]\n"
        "\t end_time[Sat Feb 16 03:19:07 2030 GMT]\n"
    )
