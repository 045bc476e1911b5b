"""Read what a vllm-ascend source tree registers, reads and accepts — without importing it.

One extractor for two kinds of tree: an unpacked sdist (the harvester) and an installed
``site-packages`` on a host (``doctor --deep``). Both hold ``vllm_ascend/`` with the same
relative paths. Everything is read as text or with :mod:`ast`; nothing is imported, so neither
torch nor vllm is needed.

This module is **stdlib only and self-contained** on purpose: host-truth checks send its source
to the host (``python3 -`` on stdin) and run :func:`main` there, so it must not import ascend_pd.
Every fact carries "path:line" relative to the tree root.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

_ABORT_RE = re.compile(r"^VLLM_\w*ABORT_REQUEST_TIMEOUT$")
_RPC_RE = re.compile(r"^VLLM\w*LLMDD_RPC_PORT$")
_RANKTABLE = "DISAGGREGATED_PREFILL_RANK_TABLE_PATH"
#: Registered connectors that are not P/D (prefill -> decode) transfer: KV pools/stores,
#: offloading, combinators and third-party caches.
_NOT_PD = ("store", "pool", "offload", "multi", "ucm", "lmcache", "cpu")


class _Tree:
    """A source tree: parsed files cached by relative path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ast: dict[str, ast.Module | None] = {}

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def parse(self, rel: str) -> ast.Module | None:
        if rel not in self._ast:
            try:
                text = (self.root / rel).read_text("utf-8", errors="replace")
                self._ast[rel] = ast.parse(text)
            except (OSError, SyntaxError, ValueError):
                self._ast[rel] = None
        return self._ast[rel]

    def files_containing(self, folder: str, needle: str) -> list[str]:
        base = self.root / folder
        found = []
        for path in sorted(base.rglob("*.py")) if base.is_dir() else []:
            try:
                if needle in path.read_text("utf-8", errors="replace"):
                    found.append(self.rel(path))
            except OSError:
                continue
        return found

    def module_files(self, module: str) -> list[str]:
        """The .py files of a dotted module (a package: all files below it)."""
        base = self.root / Path(*module.split("."))
        if base.with_suffix(".py").is_file():
            return [self.rel(base.with_suffix(".py"))]
        if base.is_dir():
            return [self.rel(p) for p in sorted(base.rglob("*.py"))]
        return []


def _str_args(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def _names_read(tree: _Tree, files: list[str], pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(NAME, "path:line") for attribute reads (envs.NAME) and string constants matching."""
    hits: list[tuple[str, str]] = []
    for rel in files:
        module = tree.parse(rel)
        if module is None:
            continue
        for node in ast.walk(module):
            name = None
            if isinstance(node, ast.Attribute) and pattern.match(node.attr):
                name = node.attr
            elif isinstance(node, ast.Call):
                # os.getenv("X"), extra_config.get("key", ...), get_from_extra_config("key", ...)
                name = next((s for s in _str_args(node) if pattern.match(s)), None)
            if name is not None:
                hits.append((name, f"{rel}:{getattr(node, 'lineno', 0)}"))
    return sorted(hits, key=lambda h: (h[1].split(":")[0], int(h[1].split(":")[1])))


def connectors(tree: _Tree) -> list[dict[str, str]]:
    """Every ``register_connector(name, module, class)`` call below vllm_ascend/."""
    found: list[dict[str, str]] = []
    for rel in tree.files_containing("vllm_ascend", "register_connector("):
        module = tree.parse(rel)
        for node in ast.walk(module) if module else []:
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "register_connector"
            ):
                continue
            args = _str_args(node)
            if len(args) != 3:
                continue
            name, mod, cls = args
            files = tree.module_files(mod)
            parent = mod.rsplit(".", 1)[0]
            if parent.rsplit(".", 1)[-1] not in ("distributed", "kv_p2p", "kv_transfer"):
                # a connector with a package of its own (kv_p2p/sfa_pd_rd2h/...): its protocol
                # and scheduler live next to the registered module
                files = sorted({*files, *tree.module_files(parent)})
            text = "".join((tree.root / f).read_text("utf-8", errors="replace") for f in files)
            lowered = f"{name} {mod}".lower()
            pd = not any(word in lowered for word in _NOT_PD) and (
                "mooncake" in lowered or "llmdatadist" in lowered or "p2p" in lowered
            )
            family = (
                "mooncake" if "mooncake" in lowered
                else "llmdatadist" if "llmdatadist" in lowered
                else "other"
            )
            found.append({
                "name": name,
                "module": mod,
                "class_name": cls,
                "source": f"{rel}:{node.lineno}",
                "pd": "yes" if pd else "no",
                "family": family,
                # The layerwise flow: D gets the request first and calls the proxy's
                # /v1/metaserver back with its block info (upstream layerwise proxy example).
                "flow": "decode-first" if "metaserver" in text else "prefill-first",
                "files": ",".join(files),
            })
    return found


def env_vars(tree: _Tree) -> tuple[list[str], str | None]:
    """The keys of ``env_variables`` in vllm_ascend/envs.py."""
    rel = "vllm_ascend/envs.py"
    module = tree.parse(rel)
    for node in ast.walk(module) if module else []:
        target: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and target.id == "env_variables" and isinstance(
            value, ast.Dict
        ):
            keys = [k.value for k in value.keys if isinstance(k, ast.Constant)]
            return sorted(str(k) for k in keys), f"{rel}:{value.lineno}"
    return [], None


def _is_additional_config(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "additional_config") or (
        isinstance(node, ast.Attribute) and node.attr == "additional_config"
    )


def _const_str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _config_key(node: ast.AST) -> str | None:
    """The additional_config key a node reads, if it reads one."""
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault"):
            if _is_additional_config(func.value) and node.args:
                return _const_str(node.args[0])
        # helpers such as _get_config_value(additional_config, "key", "ENV", default)
        elif any(_is_additional_config(a) for a in node.args):
            return next(iter(_str_args(node)), None)
    elif isinstance(node, ast.Subscript) and _is_additional_config(node.value):
        return _const_str(node.slice)
    elif (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.In)
        and _is_additional_config(node.comparators[0])
    ):
        return _const_str(node.left)
    return None


def additional_config(tree: _Tree) -> dict[str, Any]:
    """Top-level additional_config keys read anywhere, and whether unknown keys are rejected."""
    keys: dict[str, str] = {}

    def add(key: str | None, where: str) -> None:
        if key and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            keys.setdefault(key, where)

    for rel in tree.files_containing("vllm_ascend", "additional_config"):
        module = tree.parse(rel)
        for node in ast.walk(module) if module else []:
            add(_config_key(node), f"{rel}:{getattr(node, 'lineno', 0)}")
    strict_at = None
    rel = "vllm_ascend/ascend_config.py"
    module = tree.parse(rel)
    for node in module.body if module else []:
        if not (isinstance(node, ast.ClassDef) and node.name == "AscendConfig"):
            continue
        for item in node.body:
            # The fields of the strict (pydantic) schema are the keys it accepts; private
            # attributes are not user-settable.
            if (
                isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and item.target.id != "model_config"
                and not item.target.id.startswith("_")
            ):
                add(item.target.id, f"{rel}:{item.lineno}")
            for sub in ast.walk(item):
                if isinstance(sub, ast.keyword) and sub.arg == "extra" and (
                    _const_str(sub.value) == "forbid"
                ):
                    strict_at = f"{rel}:{item.lineno}"
    return {"keys": keys, "strict": strict_at}


def version(tree: _Tree) -> str | None:
    """The release's own version string (vllm_ascend/_version.py)."""
    text_path = tree.root / "vllm_ascend" / "_version.py"
    try:
        text = text_path.read_text("utf-8")
    except OSError:
        return None
    match = re.search(r"^(?:__version__|version)\b[^'\"\n]*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return match.group(1) if match else None


def extract(root: str | Path) -> dict[str, Any]:
    """Every fact the tree shows, as plain JSON-ready data with "path:line" sources."""
    tree = _Tree(Path(root))
    found = connectors(tree)
    pd = [c for c in found if c["pd"] == "yes"]
    by_name = {c["name"]: c for c in pd}

    def read(name: str, pattern: re.Pattern[str]) -> tuple[str | None, str | None]:
        conn = by_name.get(name)
        hits = _names_read(tree, conn["files"].split(","), pattern) if conn else []
        return hits[0] if hits else (None, None)

    mc_abort, mc_abort_src = read("MooncakeConnectorV1", _ABORT_RE)
    dd_abort, dd_abort_src = read("LLMDataDistCMgrConnector", _ABORT_RE)
    dd_rpc, dd_rpc_src = read("LLMDataDistCMgrConnector", _RPC_RE)
    ranktable = _names_read(
        tree, [f for c in pd for f in c["files"].split(",") if f],
        re.compile(f"^{_RANKTABLE}$"),
    )
    direct = _names_read(
        tree, by_name["MooncakeConnectorV1"]["files"].split(",") if "MooncakeConnectorV1"
        in by_name else [], re.compile("^use_ascend_direct$"),
    )
    names, env_src = env_vars(tree)
    config = additional_config(tree)
    torchair_src = config["keys"].get("torchair_graph_config")
    return {
        "version": version(tree),
        "connectors": found,
        "env_vars": names,
        "env_vars_source": env_src,
        "mooncake_abort_timeout_env": [mc_abort, mc_abort_src],
        "llmdd_abort_timeout_env": [dd_abort, dd_abort_src],
        "llmdd_rpc_port_env": [dd_rpc, dd_rpc_src],
        "ranktable": ranktable[0][1] if ranktable else None,
        "use_ascend_direct": direct[0][1] if direct else None,
        "additional_config_keys": config["keys"],
        "additional_config_strict": config["strict"],
        "torchair": torchair_src,
    }


def main(argv: list[str] | None = None) -> int:
    """``python3 extract.py ROOT`` (or the source on stdin): print the facts as JSON."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        # an installed tree: find vllm_ascend next to the running interpreter's packages
        import importlib.util

        spec = importlib.util.find_spec("vllm_ascend")
        if spec is None or not spec.submodule_search_locations:
            print(json.dumps({"error": "vllm_ascend is not installed"}))
            return 1
        args = [str(Path(next(iter(spec.submodule_search_locations))).parent)]
    print(json.dumps(extract(args[0]), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
