"""aonet.vm.build: zig builds, cached by content, with clear errors."""
from __future__ import annotations

import pytest

from aonet.vm import Limits
from aonet.vm.build import BuildError, build_c_module
from aonet.vm.wasm import WasmRuntime

SOURCE = r'''
#include <stdio.h>
static char out[64];
static int n;
__attribute__((export_name("handle"))) const char *handle(const char *m, const char *e) {
    snprintf(out, sizeof out, "{\"Output\":%d}", N + n++);
    return out;
}
'''


def test_build_from_text_and_cache(tmp_path):
    wasm = build_c_module(SOURCE, flags=["-DN=40"], cache_dir=tmp_path)
    assert wasm.startswith(b"\0asm")
    assert len(list(tmp_path.glob("*.wasm"))) == 1
    assert build_c_module(SOURCE, flags=["-DN=40"], cache_dir=tmp_path) == wasm     # a cache hit
    other = build_c_module(SOURCE, flags=["-DN=1"], cache_dir=tmp_path)              # flags are in the key
    assert len(list(tmp_path.glob("*.wasm"))) == 2
    inst = WasmRuntime().instantiate(wasm, Limits())
    assert [inst.handle({}, {}).output for _ in range(3)] == [40, 41, 42]
    assert WasmRuntime().instantiate(other, Limits()).handle({}, {}).output == 1


def test_build_from_path_tracks_headers(tmp_path):
    (tmp_path / "v.h").write_text("#define N 7\n")
    src = tmp_path / "m.c"
    src.write_text('#include "v.h"\n' + SOURCE)
    first = build_c_module(src, cache_dir=tmp_path / "cache")
    (tmp_path / "v.h").write_text("#define N 8\n")
    second = build_c_module(str(src), cache_dir=tmp_path / "cache")
    assert first != second
    assert WasmRuntime().instantiate(second, Limits()).handle({}, {}).output == 8


def test_build_errors_are_typed(tmp_path):
    with pytest.raises(BuildError, match="zig cc failed"):
        build_c_module("int main( {", cache_dir=tmp_path)
    with pytest.raises(BuildError, match="unknown target"):
        build_c_module(SOURCE, target="x86_64-linux", cache_dir=tmp_path)
