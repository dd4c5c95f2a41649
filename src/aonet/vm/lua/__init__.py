"""Lua 5.3 processes: the aos-compatible Lua module (`Module-Format: wasm32-wasi-ao1`) and helpers.

The module is Lua 5.3.6 plus aonet's own process library (lib/*.lua: Handlers, ao, json, bint, Eval,
Receive, Inbox...) compiled to a wasm32-wasi reactor that speaks docs/abi.md. It is built on first use
(see build.py) and cached; `lua_module()` returns its bytes, for the CU, `aonet up` and tests.

    from aonet.vm.lua import lua_module, module_tags, blueprint, LuaProcess
    proc = LuaProcess.spawn(WasmRuntime(), data=blueprint("token"), tags={"On-Boot": "Data"})
    proc.send({"Action": "Balance"})
"""
from __future__ import annotations

import functools
from pathlib import Path

from . import build
from .build import MODULE_SHA256, BuildError
from .harness import LuaProcess

FORMAT = "wasm32-wasi-ao1"
BLUEPRINTS = Path(__file__).resolve().parent / "blueprints"

__all__ = ["FORMAT", "MODULE_SHA256", "BuildError", "LuaProcess", "blueprint", "lua_module", "module_tags"]


@functools.lru_cache(maxsize=1)
def lua_module() -> bytes:
    """The Lua module's bytes (built into the cache on first use; raises BuildError)."""
    return build.build().read_bytes()


def module_tags(name: str = "aonet-lua53") -> list[dict[str, str]]:
    """The tags to publish the module with (AO's Module data item, PROTOCOL.md section 2)."""
    return [
        {"name": "Data-Protocol", "value": "ao"},
        {"name": "Variant", "value": "ao.TN.1"},
        {"name": "Type", "value": "Module"},
        {"name": "Module-Format", "value": FORMAT},
        {"name": "Input-Encoding", "value": "JSON-1"},
        {"name": "Output-Encoding", "value": "JSON-1"},
        {"name": "Memory-Limit", "value": "1-gb"},
        {"name": "Compute-Limit", "value": "9000000000000"},
        {"name": "Content-Type", "value": "application/wasm"},
        {"name": "Name", "value": name},
    ]


def blueprint(name: str) -> str:
    """The Lua source of a blueprint (e.g. "token"), to Eval or to spawn with On-Boot: Data."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"bad blueprint name: {name!r}")
    path = BLUEPRINTS / f"{name}.lua"
    if not path.is_file():
        known = sorted(p.stem for p in BLUEPRINTS.glob("*.lua"))
        raise ValueError(f"no blueprint {name!r} (known: {', '.join(known)})")
    return path.read_text()
