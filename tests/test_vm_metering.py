"""aonet.vm.metering against AO's own metering pass (@permaweb/wasm-metering, which ao-loader 0.0.49
applies at load time to the `*-metering` formats): the same bytes out, for real modules (the emlua
builds of every format, left unmetered) and small WAT modules, with both meter types; refused where
the JavaScript throws. tests/js/meter_wasm.cjs runs the JavaScript.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import wasmtime

from aonet.vm.base import VMError
from aonet.vm.metering import MeteringError, meter_wasm, sleb, uleb

from test_emscripten import LOADER, ROOT, _load_builder

METER_JS = ROOT / "tests" / "js" / "meter_wasm.cjs"
METERING = ROOT / "node_modules" / "@permaweb" / "wasm-metering"


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required under $CI)")
    pytest.skip(reason)


def _need_node() -> None:
    if shutil.which("node") is None or not METERING.exists() or not LOADER.exists():
        _missing("node or @permaweb/wasm-metering missing (make install)")


def js_meter(wasm: bytes, meter_type: str, tmp_path) -> bytes | str:
    """The JavaScript's output, or its error message when it throws."""
    src, dst = tmp_path / f"in-{meter_type}.wasm", tmp_path / f"out-{meter_type}.wasm"
    src.write_bytes(wasm)
    proc = subprocess.run(["node", str(METER_JS), str(src), str(dst), meter_type], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode == 1:
        return proc.stderr.strip()
    assert proc.returncode == 0, proc.stderr
    return dst.read_bytes()


def assert_same(wasm: bytes, tmp_path) -> None:
    for mt in ("i32", "i64"):
        js = js_meter(wasm, mt, tmp_path)
        assert isinstance(js, bytes), js
        ours = meter_wasm(wasm, mt)
        if ours != js:
            i = next((i for i in range(min(len(ours), len(js))) if ours[i] != js[i]), min(len(ours), len(js)))
            pytest.fail(f"{mt}: first difference at byte {i} of {len(js)} (ours {len(ours)}): "
                        f"ours {ours[i - 8:i + 8].hex()} js {js[i - 8:i + 8].hex()}")


CONTROL = r"""
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "f" (func $f (param i32) (result i32)))
  (import "env" "mem" (memory 1))
  (import "env" "g" (global $g (mut i32)))
  (import "env" "f2" (func $f2))
  (table 4 funcref)
  (global $h (mut i64) (i64.const -5))
  (global $k f64 (f64.const 2.5))
  (elem (i32.const 1) $a $b $f $f2)
  (func $a (type $t) (local i32 i64 f32) (local f64)
    block $out
      loop $l
        local.get 0
        i32.eqz
        br_if $out
        local.get 0
        i32.const 1
        i32.sub
        local.set 0
        local.get 0
        br_table $l $out $l
      end
    end
    local.get 0
    if (result i32)
      i32.const 7
      call $b
    else
      i32.const 1
      memory.grow
    end
    f32.const 1.5
    f32.abs
    drop
    f64.const -2.25
    f64.sqrt
    drop
    i64.const -9223372036854775808
    i64.const 0x7fffffffffffffff
    i64.rem_u
    drop
    memory.size
    drop
    i32.const 3
    call_indirect (type $t)
    i32.const 100000
    i32.div_s
    i32.extend8_s
    global.get $g
    select
    i32.load offset=1000000 align=1
    i32.const -64
    i32.store8 offset=3)
  (func $b (type $t)
    local.get 0
    call $f
    call $a
    call $f2
    return)
  (func $c nop)
  (func $d (result f32) f32.const 1 f32.const 2 f32.div unreachable)
  (func $e (param i32)
    block
      block
        local.get 0
        br_table 0 1 0
      end
      return
    end
    loop
      i32.const 0
      if
        br 1
      end
    end)
  (data (i32.const 16) "hello\00")
  (data (i32.const 1024) "")
  (start $c)
  (export "a" (func $a))
  (export "b" (func $b))
  (export "f" (func $f))
  (export "h" (global $h))
  (export "mem" (memory 0))
  (export "tab" (table 0))
  (export "c" (func $c)))
"""

NO_IMPORTS = r"""(module (memory (export "memory") 1) (func (export "x") (result i32) i32.const 1 i32.const 2 i32.add))"""
ONLY_MEMORY = r"""(module (memory (export "memory") 1) (data (i32.const 0) "x"))"""
MEMORY64 = r"""
(module
  (import "env" "h" (func $h (param i64) (result i64)))
  (memory (export "memory") i64 1 100)
  (func (export "g") (param i64) (result i64)
    local.get 0
    i64.load offset=8
    i64.const 1
    memory.grow
    i64.add
    call $h)
  (data (i64.const 8) "\01\02"))
"""


@pytest.mark.parametrize("wat", [CONTROL, NO_IMPORTS, ONLY_MEMORY, MEMORY64],
                         ids=["control-flow", "no-imports", "no-functions", "memory64"])
def test_wat_modules_same_bytes_as_js(wat, tmp_path):
    _need_node()
    assert_same(wasmtime.wat2wasm(wat), tmp_path)


def test_custom_sections_and_non_ascii_names_same_bytes_as_js(tmp_path):
    """Names are re-encoded as the toolkit does (JavaScript length, UTF-8 bytes); custom sections
    (here the name section, with the indices it had before the shift) are kept as they were."""
    _need_node()
    wasm = bytes(wasmtime.wat2wasm('(module (@custom "ünï" "data") (import "env" "é" (func $i)) '
                                   '(func $cafe (export "ü") call $i) (@custom "x" (after func) ""))'))
    assert b"\x00\x02\x01x" in wasm and b"\x04name" in wasm and "ünï".encode() in wasm
    assert_same(wasm, tmp_path)


@pytest.fixture(scope="session")
def unmetered() -> dict[str, bytes]:
    """The emlua builds of each format without the build-time metering pass (cached)."""
    _need_node()
    if shutil.which("emcc") is None:
        _missing("emcc missing (make install installs Debian's emscripten)")
    builder = _load_builder()
    out = {fmt: builder.build(fmt=fmt, meter=False).read_bytes() for fmt in builder.FORMATS}
    from test_emscripten64_build import _builder
    out["wasm64"] = _builder().build(meter=False).read_bytes()
    return out


@pytest.mark.parametrize("fmt", ["wasm32-unknown-emscripten2", "wasm32-unknown-emscripten3",
                                 "wasm32-unknown-emscripten4", "wasm64"])
def test_emlua_builds_same_bytes_as_js(unmetered, fmt, tmp_path):
    assert not any(i.module == "metering" for i in wasmtime.Module(_engine(), unmetered[fmt]).imports)
    assert_same(unmetered[fmt], tmp_path)


def test_build_time_metering_is_the_same_pass(unmetered):
    """The default emlua builds are metered by the same JavaScript at build time: metering the
    unmetered build gives the very module the other conformance tests run."""
    builder = _load_builder()
    assert meter_wasm(unmetered["wasm32-unknown-emscripten2"], "i32") == builder.build().read_bytes()
    from test_emscripten64_build import _builder
    assert meter_wasm(unmetered["wasm64"], "i64") == _builder().build().read_bytes()


def _engine() -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.wasm_memory64 = True
    return wasmtime.Engine(cfg)


def test_refused_where_the_js_throws(tmp_path):
    _need_node()
    metered = meter_wasm(wasmtime.wat2wasm(NO_IMPORTS), "i32")
    assert "importing metering function is not allowed" in js_meter(metered, "i32", tmp_path)
    with pytest.raises(MeteringError, match="importing metering function is not allowed"):
        meter_wasm(metered, "i32")
    bulk = wasmtime.wat2wasm('(module (memory 1) (func i32.const 0 i32.const 0 i32.const 1 memory.copy))')
    assert not isinstance(js_meter(bulk, "i32", tmp_path), bytes)        # the toolkit has no 0xFC opcodes
    with pytest.raises(MeteringError, match="opcode 0xfc"):
        meter_wasm(bulk, "i32")


def test_bad_input_is_a_typed_error():
    for bad in (b"", b"\0asm", b"\0asm\1\0\0\0\x01\x05\x01", b"\0asm\1\0\0\0\x0d\x00"):
        with pytest.raises(VMError):
            meter_wasm(bad, "i32")
    with pytest.raises(MeteringError, match="meter type"):
        meter_wasm(wasmtime.wat2wasm(NO_IMPORTS), "f64")


def test_gas_is_charged_per_piece_as_the_cost_table_says():
    """No Node needed: run a metered module and add up what it charges. `i32.const 1; i32.const 2;
    i32.add; end` is one piece: 1 + 1 + 45 + 0, plus 91 for the metering statement itself; the loop
    below charges its header piece once and its body per iteration."""
    engine = _engine()
    store = wasmtime.Store(engine)
    used = []
    for mt, ty in (("i32", wasmtime.ValType.i32()), ("i64", wasmtime.ValType.i64())):
        metered = meter_wasm(wasmtime.wat2wasm(NO_IMPORTS), mt)
        module = wasmtime.Module(engine, metered)
        assert [(i.module, i.name) for i in module.imports] == [("metering", "usegas")]
        usegas = wasmtime.Func(store, wasmtime.FuncType([ty], []), lambda n: used.append(n))
        inst = wasmtime.Instance(store, module, [usegas])
        assert inst.exports(store)["x"](store) == 3
        assert used == [138]
        used.clear()
    loop = wasmtime.wat2wasm(r"""(module (func (export "x") (param i32) (local i32)
        loop
          local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0
        end))""")
    module = wasmtime.Module(engine, meter_wasm(loop, "i32"))
    usegas = wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i32()], []), lambda n: used.append(n))
    wasmtime.Instance(store, module, [usegas]).exports(store)["x"](store, 3)
    # `loop` (1); body: get 120 + const 1 + sub 45 + tee 120 + br_if 90 = 376 (x3); `end` `end`: 0
    assert used == [1 + 91] + [376 + 91] * 3


def test_leb128_encoders():
    assert uleb(0) == b"\0" and uleb(127) == b"\x7f" and uleb(128) == b"\x80\x01" and uleb(624485) == b"\xe5\x8e\x26"
    assert sleb(0) == b"\0" and sleb(-1) == b"\x7f" and sleb(63) == b"\x3f" and sleb(64) == b"\xc0\x00"
    assert sleb(-64) == b"\x40" and sleb(-65) == b"\xbf\x7f" and sleb(-123456) == b"\xc0\xbb\x78"
