"""Shared fixtures for the aonet.vm tests: the test modules (built once per session, cached on disk
by source hash under $AONET_CACHE) and small message helpers. Import the fixtures into a test file
with `from vm_fixtures import *`."""
from __future__ import annotations

from pathlib import Path

import pytest

from aonet.vm.build import build_c_module
from aonet.vm.wasm import WasmRuntime

MODULES = Path(__file__).parent / "modules"
OWNER = "owner-" + "o" * 37
ENV = {"Process": {"Id": "process-" + "p" * 35, "Owner": OWNER, "Tags": []}}

# name -> how to build it
_C = {"counter": {}, "ledger": {}, "outbox": {}, "probe": {}, "sjlj": {"sjlj": True},
      "counter64": {"target": "wasm64"}}
_WAT = ("trap", "loop", "bomb")


@pytest.fixture(scope="session")
def wasm_modules() -> dict[str, bytes]:
    mods = {name: build_c_module(MODULES / f"{name}.c", **opts) for name, opts in _C.items()}
    for name in _WAT:
        mods[name] = (MODULES / f"{name}.wat").read_bytes()
    return mods


@pytest.fixture(scope="session")
def runtime() -> WasmRuntime:
    return WasmRuntime()


def msg(action: str, n: int = 0, *, frm: str = OWNER, data: str = "", ts: int = 1_700_000_000_000, **tags) -> dict:
    """An AO-shaped message with Action and the given tags."""
    return {"Id": f"msg-{n:08d}", "From": frm, "Owner": frm, "Target": ENV["Process"]["Id"], "Timestamp": ts,
            "Data": data, "Tags": [{"name": "Action", "value": action}] +
            [{"name": k, "value": str(v)} for k, v in tags.items()]}


def tag(message: dict, name: str) -> str | None:
    return next((t["value"] for t in message.get("Tags", []) if t["name"] == name), None)


__all__ = ["wasm_modules", "runtime", "msg", "tag", "ENV", "OWNER", "MODULES"]
