"""The post-link editor the emlua build uses for the newer emscripten formats (tests/modules/emlua/wasmedit.py):
export aliases share the function, import renames keep the signature, everything else is untouched."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import wasmtime

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("wasmedit", ROOT / "tests" / "modules" / "emlua" / "wasmedit.py")
wasmedit = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("wasmedit", wasmedit)
_spec.loader.exec_module(wasmedit)

WAT = """
(module
  (import "env" "old_name" (func $h (param i32) (result i32)))
  (import "env" "mem_import" (memory 1 2))
  (global $sp (mut i32) (i32.const 4096))
  (func $save (export "stackSave") (result i32) (global.get $sp))
  (func (export "stackRestore") (param i32) (global.set $sp (local.get 0)))
  (func (export "call_host") (param i32) (result i32) (call $h (local.get 0)))
  (data (i32.const 8) "payload"))
"""


@pytest.fixture()
def module() -> bytes:
    return bytes(wasmtime.wat2wasm(WAT))


def test_alias_is_the_same_function(module):
    out = wasmedit.edit(module, aliases={"emscripten_stack_get_current": "stackSave",
                                         "_emscripten_stack_restore": "stackRestore"})
    by_name = {e.name: e for e in wasmedit.exports(out)}
    assert by_name["emscripten_stack_get_current"].index == by_name["stackSave"].index
    assert by_name["_emscripten_stack_restore"].index == by_name["stackRestore"].index
    # only the export section changed: every other section is the same bytes
    old, new = wasmedit.sections(module), wasmedit.sections(out)
    assert [s for s in old if s[0] != 7] == [s for s in new if s[0] != 7]
    store = wasmtime.Store()
    mem = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 2)))
    host = wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i32()], [wasmtime.ValType.i32()]), lambda x: x + 1)
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, out), [host, mem])
    ex = inst.exports(store)
    ex["_emscripten_stack_restore"](store, 1234)
    assert ex["stackSave"](store) == ex["emscripten_stack_get_current"](store) == 1234


def test_rename_import_keeps_its_signature(module):
    out = wasmedit.edit(module, renames={("env", "old_name"): "new_name"})
    assert wasmedit.imports(out) == [("env", "new_name", 0), ("env", "mem_import", 2)]
    m = wasmtime.Module(wasmtime.Engine(), out)
    imp = [i for i in m.imports if i.name == "new_name"][0]
    assert [str(t) for t in imp.type.params] == ["i32"] and [str(t) for t in imp.type.results] == ["i32"]


def test_bad_edits_and_inputs_are_typed_errors(module):
    with pytest.raises(wasmedit.WasmEditError, match="no export 'nope'"):
        wasmedit.edit(module, aliases={"x": "nope"})
    with pytest.raises(wasmedit.WasmEditError, match="exists already"):
        wasmedit.edit(module, aliases={"stackRestore": "stackSave"})
    with pytest.raises(wasmedit.WasmEditError, match="does not import"):
        wasmedit.edit(module, renames={("env", "missing"): "x"})
    with pytest.raises(wasmedit.WasmEditError, match="exists already"):
        wasmedit.edit(module, renames={("env", "old_name"): "mem_import"})
    with pytest.raises(wasmedit.WasmEditError, match="not a wasm"):
        wasmedit.edit(b"\0asm\x02\0\0\0")
    with pytest.raises(wasmedit.WasmEditError):
        wasmedit.edit(module[:-3], aliases={"a": "stackSave"})
    assert wasmedit.edit(module) == module
