"""Module items built from wasm files: the format is checked against the binary before upload."""
from __future__ import annotations

import pytest

from aonet.ans104 import DataItem
from aonet.vm.publish import PublishError, build_module_item, detect_format
from aonet.wallet import Wallet
from test_emscripten import emlua  # noqa: F401  (session fixture: the emscripten Lua module)

WASI_WAT = b"""(module (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) i32.const 8)
  (func (export "free") (param i32))
  (func (export "handle") (param i32 i32) (result i32) i32.const 0))"""


def _wasm(wat: bytes) -> bytes:
    import wasmtime
    return wasmtime.wat2wasm(wat.decode())


def tag_map(item: DataItem) -> dict:
    return {t.name: t.value for t in item.tags}


def test_emscripten_module_item(emlua):  # noqa: F811
    assert detect_format(emlua) == "wasm32-unknown-emscripten2"
    item = build_module_item(Wallet.generate("ed25519"), emlua, memory_limit="512-mb", compute_limit=9_000_000_000)
    tags = tag_map(item)
    assert tags["Type"] == "Module" and tags["Module-Format"] == "wasm32-unknown-emscripten2"
    assert tags["Memory-Limit"] == "512-mb" and tags["Compute-Limit"] == "9000000000"
    assert item.data == emlua and item.verify()
    with pytest.raises(PublishError, match="does not fit"):
        build_module_item(Wallet.generate("ed25519"), emlua, module_format="wasm32-wasi-ao1")


def test_wasi_module_item_and_bad_input():
    wasm = _wasm(WASI_WAT)
    assert detect_format(wasm) == "wasm32-wasi-ao1"
    w = Wallet.generate("ed25519")
    assert tag_map(build_module_item(w, wasm))["Module-Format"] == "wasm32-wasi-ao1"
    with pytest.raises(PublishError, match="unknown Module-Format"):
        build_module_item(w, wasm, module_format="wasm32-nope")
    with pytest.raises(PublishError):
        build_module_item(w, b"not wasm")
    with pytest.raises(PublishError, match="does not fit"):
        build_module_item(w, wasm, module_format="wasm32-unknown-emscripten2")
