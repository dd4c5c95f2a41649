"""The emlua module for AO's `wasm64-unknown-emscripten-draft_2024_02_15` format, built with Debian's
emscripten 3.1.6 (-sMEMORY64=1, tests/modules/emlua64), run by @permaweb/ao-loader's own wasm64 glue
in Node: the reference a wasm64 host of aonet's will be checked against.

The build is cached (the private emscripten config and its wasm64 system libraries under
$AONET_CACHE/emscripten64, the module under $AONET_CACHE/emlua) and made once per session.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess

import pytest

from test_emscripten import ENV, LOADER, ROOT, SEQUENCE, _msg, _need_tools

FORMAT = "wasm64-unknown-emscripten-draft_2024_02_15"
RUNNER = ROOT / "tests" / "js" / "aoloader_run64.cjs"
BUILD = ROOT / "tests" / "modules" / "emlua64" / "build.py"

NUMBERS = ["0.1", "1e-320", "2.2250738585072011e-308", "4.9e-324", "1.7976931348623157e308", "1e309",
           "123456789012345678901234567890", "0.1000000000000000055511151231257827", "9007199254740993",
           "2.4703282292062328e-324", "0x1.fffffffffffffp1023", "1e23", "8.98846567431158e307"]
EXTRA = [
    _msg(20, "Eval", "return 1+41"),
    # strtod goes through long double arithmetic and comparisons (abi64.c's __letf2 & co.)
    _msg(21, "Eval", "local t = {} for _, s in ipairs({" + ",".join(f"'{s}'" for s in NUMBERS) + "}) do "
                     "t[#t + 1] = string.format('%.17g', tonumber(s)) end return table.concat(t, ' ')"),
    # Lua errors: the error() of a handler, an error caught by pcall, a coroutine's error
    _msg(22, "Eval", "local ok, e = pcall(function() local t = nil; return t.x end) return tostring(ok) .. ' ' .. e"),
    _msg(23, "Eval", "local co = coroutine.create(function(a) local b = coroutine.yield(a + 1); error('co ' .. b) end) "
                     "local r1 = {coroutine.resume(co, 1)} local r2 = {coroutine.resume(co, 5)} "
                     "return tostring(r1[2]) .. ' ' .. tostring(r2[1]) .. ' ' .. tostring(r2[2])"),
    _msg(24, "Eval", "error('boom')"),
    # time through the glue's helpers, with TZ=UTC
    # (aonet's process library offers no os.time(table), os.rename or os.remove: mktime, renameat and
    # unlinkat are linked but cannot be reached from Lua)
    _msg(25, "Eval", 'return os.date("%Y-%m-%d %H:%M:%S %Z|%c|%z|%x", 86400 * 365) .. " " .. os.date("!%c", 0)'),
    # files: openat, fcntl, fd_write/read/seek/close
    _msg(26, "Eval", 'local f = assert(io.open("/tmp/x", "w")); f:write("hi there"); f:close(); '
                     'local g = io.open("/tmp/x"); local s = g:read("a"); local p = g:seek("set", 3); '
                     'local t = g:read(2); g:close(); '
                     'return s .. "|" .. p .. "|" .. t .. "|" .. tostring(io.open("/tmp/nope") == nil)'),
    _msg(27, "Eval", "local a = gas_used(); local b = gas_used(); return string.format('%d %s', a, b > a)"),
]


def _builder():
    spec = importlib.util.spec_from_file_location("emlua64_build", BUILD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def wasm64() -> tuple[bytes, str]:
    """(module bytes, cached path): built once per session, cached across sessions."""
    _need_tools()
    path = _builder().build()
    return path.read_bytes(), str(path)


def reference(path: str, messages) -> list[dict]:
    req = {"module": path, "format": FORMAT, "messages": [[m, ENV] for m in messages]}
    proc = subprocess.run(["node", "--experimental-wasm-memory64", str(RUNNER)], input=json.dumps(req),
                          capture_output=True, text=True, env={**os.environ, "TZ": "UTC"}, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture(scope="session")
def ran(wasm64) -> list[dict]:
    return reference(wasm64[1], SEQUENCE + EXTRA)


def _glue_import_names() -> set[str]:
    """The names in the wasm64 glue's wasmImports (env and wasi_snapshot_preview1 share it)."""
    src = (LOADER / "dist" / "index.cjs").read_text()
    section = src[src.index('"src/formats/wasm64-emscripten.cjs"'):]
    block = section[section.index("var wasmImports = {"):]
    block = block[:block.index("\n        };")]
    return set(re.findall(r"^\s*([A-Za-z_$][\w$]*)\s*[:,]?\s*(?:[\w$]+)?,?\s*$", block, re.M)) - {"var"}


def test_imports_are_what_the_glue_provides(wasm64):
    b = _builder()
    info = b.wasm64info.read(wasm64[0])
    assert sorted(info.imports) == sorted(b.IMPORTS)
    glue = _glue_import_names()
    assert {"invoke_vjj", "fd_write", "__syscall_openat", "_tzset_js"} <= glue     # the parse found the block
    for mod, name, _sig in info.imports:
        assert (mod == "metering" and name == "usegas") or (mod != "metering" and name in glue), (mod, name)


def test_exports_the_glue_calls(wasm64):
    info = _builder().wasm64info.read(wasm64[0])
    want = {
        "handle": "(i64 i64) -> i64", "malloc": "(i64) -> i64", "free": "(i64) -> nil",
        "fflush": "(i64) -> i32", "setThrew": "(i64 i32) -> nil", "dynCall_vjj": "(i32 i64 i64) -> nil",
        "_emscripten_stack_restore": "(i64) -> nil", "_emscripten_stack_alloc": "(i64) -> i64",
        "emscripten_stack_get_current": "() -> i64", "emscripten_stack_init": "() -> nil",
        "emscripten_stack_get_end": "() -> i64", "__wasm_call_ctors": "() -> nil",
        "memory": "memory", "__indirect_function_table": "table",
    }
    assert {k: info.exports.get(k) for k in want} == want
    assert info.exports["_emscripten_stack_restore"] == info.exports["stackRestore"]
    assert info.memory is not None and info.memory.memory64
    assert (info.memory.minimum, info.memory.maximum) == (96, 8000)        # 6 MiB, at most 500 MiB


def test_aoloader_runs_the_process(ran):
    assert len(ran) == len(SEQUENCE) + len(EXTRA)
    assert not [r for r in ran if "thrown" in r], [r["thrown"] for r in ran if "thrown" in r]
    out = [r.get("Output", {}).get("data") if isinstance(r.get("Output"), dict) else r.get("Output") for r in ran]
    assert out[1] == "ready" and out[2] == "count 1"
    assert ran[3]["Messages"][0]["Data"] == "pong héllo ✓ 𝄞" and ran[3]["Messages"][0]["Target"] == "owner-1"
    assert ran[4]["Spawns"][0]["Data"] == "child of process-1"
    assert ran[5]["Assignments"] == [{"Message": "msg-9", "Processes": ["p-2", "p-3"]}]
    assert "failing on purpose" in ran[6]["Error"] and ran[6]["memory"] == ran[5]["memory"]
    assert out[7] == "count 2" and out[8] == "2"          # the failed message's +1000 was discarded
    assert out[9] == "2023-11-14 22:13:20 Tuesday 318"
    assert out[10] == "8388608" and ran[10]["memory"]["length"] > 8 * 1024 * 1024 > ran[9]["memory"]["length"]
    assert out[11] == "8388610" and out[12] == "2000"
    for r in ran:
        assert isinstance(r["GasUsed"], int) and r["GasUsed"] > 0


def test_eval_and_libc(ran):
    n = len(SEQUENCE)
    out = [r["Output"]["data"] if isinstance(r.get("Output"), dict) else None for r in ran[n:]]
    assert out[0] == "42"
    assert out[1] == " ".join("%.17g" % float.fromhex(s) if s.startswith("0x") else "%.17g" % float(s)
                              for s in NUMBERS)
    assert out[2] == "false eval:1: attempt to index a nil value (local 't')"
    assert out[3] == "2 false eval:1: co 5"
    assert ran[n + 4]["Error"].startswith("eval:1: boom") and ran[n + 4]["memory"] == ran[n + 3]["memory"]
    # the glue's strftime writes %c with a zero-padded day (%d), unlike musl (%e)
    assert out[5] == "1971-01-01 00:00:00 UTC|Fri Jan 01 00:00:00 1971|+0000|01/01/71 Thu Jan 01 00:00:00 1970"
    assert out[6] == "hi there|3|th|true"
    used, grows = out[7].split()
    assert int(used) > 0 and grows == "true"


def test_memory_is_deterministic(wasm64, ran):
    again = reference(wasm64[1], SEQUENCE[:4])
    assert [r["memory"] for r in again] == [r["memory"] for r in ran[:4]]
    assert [r["GasUsed"] for r in again] == [r["GasUsed"] for r in ran[:4]]
