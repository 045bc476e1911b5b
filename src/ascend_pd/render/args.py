"""Reading ``extra_args``: which flags they set, and the mistakes that break a launch line.

The reference recipes shipped ``---max-num-batched-tokens`` (three dashes) and trailing
backslashes; both turn into a server that ignores the setting or a shell that runs the rest of
the line as a separate command. Here they are caught before anything is rendered.
"""

from __future__ import annotations

import re
from typing import Final

from ascend_pd.findings import Finding, at_key

_SINGLE_DASH_LONG: Final = re.compile(r"^-[A-Za-z][A-Za-z0-9]*-")

#: flags the plan computes; an override would desynchronise ports, ranktable or proxy
PLAN_OWNED: Final[dict[str, str]] = {
    "--tensor-parallel-size": "tp", "-tp": "tp",
    "--data-parallel-size": "dp", "-dp": "dp",
    "--data-parallel-size-local": "dp and hosts",
    "--data-parallel-start-rank": "dp and hosts",
    "--data-parallel-address": "hosts (the first host is the DP head)",
    "--data-parallel-rpc-port": "dp_rpc_port",
    "--headless": "hosts (every host after the first is headless)",
    "--data-parallel-hybrid-lb": "dp_mode: hybrid",
    "--host": "the renderer (0.0.0.0; the host address in sim mode)",
    "--port": "port",
    "--kv-transfer-config": "connector (it is generated per role)",
}


def flag_values(args: list[str]) -> dict[str, str | None]:
    """``--flag value`` / ``--flag=value`` pairs (last one wins, like argparse)."""
    out: dict[str, str | None] = {}
    last: str | None = None
    for word in args:
        if word.startswith("-") and not _is_number(word):
            flag, sep, value = word.partition("=")
            out[flag] = value if sep else None
            last = None if sep else flag
        elif last is not None:
            out[last] = word
            last = None
    return out


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def arg_problems(args: list[str], key: str = "extra_args") -> list[Finding]:
    """Every malformed item of ``args`` (empty list when they look like a valid argv), as
    errors about ``<key>[i]``."""
    out: list[Finding] = []

    def problem(i: int, message: str, hint: str) -> None:
        out.append(at_key("error", f"{key}[{i}]", message, hint))

    for i, word in enumerate(args):
        if word.strip() in ("", "\\") or word.endswith("\\"):
            problem(i, f"item {word!r} is empty or a line continuation",
                    "list each word as its own item; no backslashes")
        elif word.startswith("---"):
            problem(i, f"'{word}' has three dashes; vllm rejects it",
                    f"write '--{word.lstrip('-')}'")
        elif _SINGLE_DASH_LONG.match(word):
            problem(i, f"'{word}' is a long option with a single dash",
                    f"write '-{word}'")
        elif word.startswith("--") and "=" not in word and any(c.isspace() for c in word):
            flag, _, rest = word.partition(" ")
            problem(i, f"'{word}' holds a flag and its value in one item",
                    f"split it into two items: '{flag}', '{rest.strip()}'")
        elif i == 0 and not word.startswith("-"):
            problem(i, f"'{word}' is a value without a flag before it",
                    "start extra_args with an option such as '--max-num-seqs'")
    return out
