"""The Lua module build: pinned inputs, reproducible output, the ABI it exports."""
import hashlib
import tempfile
from pathlib import Path

import wasmtime

from aonet.vm.lua import MODULE_SHA256, build as lua_build, lua_module

LUA_DIR = Path(lua_build.__file__).parent


def test_module_sha256_is_pinned():
    assert hashlib.sha256(lua_module()).hexdigest() == MODULE_SHA256, (
        "glue.c, json.c, lib/*.lua, the flags or a pinned tool changed: review the change and update "
        "MODULE_SHA256 in src/aonet/vm/lua/build.py")


def test_sdist_is_pinned_and_holds_lua_536():
    data = lua_build.fetch_sdist()
    assert hashlib.sha256(data).hexdigest() == lua_build.LUPA_SHA256
    sources = lua_build.lua_sources(data)
    assert set(sources) == set(lua_build.LUA_C + lua_build.LUA_H)
    assert b'#define LUA_VERSION_RELEASE\t"6"' in sources["lua.h"]
    assert b'#define LUA_VERSION_MINOR\t"3"' in sources["lua.h"]


def test_build_is_reproducible_in_another_directory():
    with tempfile.TemporaryDirectory(prefix="other-place-") as tmp:
        again = lua_build.compile_module(Path(tmp) / "deeper")
    assert again == lua_module()


def test_no_third_party_c_in_the_repository():
    names = {p.name for p in LUA_DIR.rglob("*")}
    assert not names & set(lua_build.LUA_C + lua_build.LUA_H)
    assert {"glue.c", "json.c", "wasi_compat.h"} <= names


def test_module_exports_the_aonet_abi():
    module = wasmtime.Module(wasmtime.Engine(_config()), lua_module())
    exports = {e.name for e in module.exports}
    assert {"memory", "malloc", "free", "handle", "_initialize"} <= exports
    assert {i.module for i in module.imports} == {"wasi_snapshot_preview1"}


def _config():
    cfg = wasmtime.Config()
    cfg.wasm_exceptions = True
    return cfg
