"""aonet's `*-metering` formats against ao-loader 0.0.49, message for message:
`wasm32-unknown-emscripten-metering` (the loader meters the module itself with an i32 meter, then runs
the emscripten4 glue) and `wasm64-unknown-emscripten-draft_2024_10_16-metering` (i64 meter, the wasm64
glue). The modules are the emlua builds for emscripten4 and wasm64 without their build-time metering
pass; both sides meter them at load time (aonet with aonet.vm.metering). Results, GasUsed and the
memory bytes after every message must equal the loader's, out of gas included.
"""
from __future__ import annotations

import pytest

from aonet.vm.base import Limits, VMError
from aonet.vm.emscripten import EmscriptenRuntime
from aonet.vm.emscripten_profile import EMSCRIPTEN_METERING, WASM64_METERING

from test_emscripten import (ENV, RUNNER, SEQUENCE, _load_builder, _msg, _need_tools, fresh_instance_continues,
                             images_match_loader, run_loader, runtime)
from test_emscripten3 import sequence
from test_emscripten64 import _missing, compare

W32 = EMSCRIPTEN_METERING.format
W64 = WASM64_METERING.format


@pytest.fixture(scope="session")
def modules() -> dict[str, tuple[bytes, str]]:
    """format -> (unmetered module, its cached path)."""
    _need_tools()
    p32 = _load_builder().build(fmt="wasm32-unknown-emscripten4", meter=False)
    try:
        from test_emscripten64_build import _builder
    except ImportError:
        _missing("tests/test_emscripten64_build.py missing")
    p64 = _builder().build(meter=False)
    return {W32: (p32.read_bytes(), str(p32)), W64: (p64.read_bytes(), str(p64))}


def reference(path: str, fmt: str, messages, options: dict | None = None, expect_ok: bool = True):
    return run_loader(path, fmt, messages, options=options, expect_ok=expect_ok, program=str(RUNNER))


def messages_for(fmt: str) -> list[tuple[dict, dict]]:
    if fmt == W32:
        return [(m, ENV) for m in sequence("wasm32-unknown-emscripten4")]     # + Asyncify, gas_used()
    from test_emscripten64_build import EXTRA
    return [(m, ENV) for m in SEQUENCE + list(EXTRA)]


@pytest.mark.parametrize("fmt", [W32, W64])
def test_same_results_memory_and_gas_as_ao_loader(modules, fmt):
    data, path = modules[fmt]
    messages = messages_for(fmt)
    ref = reference(path, fmt, messages)
    outs = compare(runtime().instantiate(data, format=fmt), messages, ref)
    assert outs[2].output["data"] == "count 1"
    assert outs[3].messages[0]["Data"] == "pong héllo ✓ 𝄞"
    assert "failing on purpose" in outs[6].error and outs[7].output["data"] == "count 2"
    assert ref[10]["memory"]["length"] > 6291456
    assert all(o.gas_used > 0 for o in outs if o.error is None)        # metered at load time
    if fmt == W32:
        assert outs[13].output["data"] == "0" and outs[14].output["data"] == "count 3"    # Asyncify


@pytest.mark.parametrize("fmt", [W32, W64])
def test_out_of_gas_and_rollback_match_loader(modules, fmt):
    data, path = modules[fmt]
    messages = [(SEQUENCE[0], ENV), (SEQUENCE[1], ENV), (_msg(20, "Eval", "while true do end"), ENV),
                (_msg(21, "Inc"), ENV)]
    ref = reference(path, fmt, messages, {"computeLimit": 2_000_000_000})
    assert ref[2] == {"thrown": "out of gas!", "memory": ref[1]["memory"]}
    outs = compare(runtime().instantiate(data, Limits(compute=2_000_000_000), format=fmt), messages, ref)
    assert outs[2].error == "out of gas!" and outs[3].output["data"] == "count 1"


@pytest.mark.parametrize("fmt", [W32, W64])
def test_memory_passed_per_message_matches_loader(modules, fmt, tmp_path):
    """restore/snapshot_image per message, and a fresh instance (metered binary from the disk cache)
    restored from an image, continue as the loader does."""
    data, path = modules[fmt]
    messages = [(m, ENV) for m in SEQUENCE[:4] + [_msg(30, "Inc")]]
    ref = reference(path, fmt, messages)
    inst = runtime(cache_dir=tmp_path).instantiate(data, format=fmt)
    images = images_match_loader(inst, messages, ref)
    assert list(tmp_path.glob("metered-*.wasm"))
    fresh_instance_continues(runtime(cache_dir=tmp_path).instantiate(data, image=bytes(images[-2]), format=fmt),
                             messages[-1], ref[-1])


def test_metered_module_is_refused_as_the_loader_refuses_it(modules):
    """A module that is already metered (the emscripten4 build as published for that format) does not
    load under the metering format: the loader's pass throws, aonet refuses it with the same reason."""
    path = _load_builder().build(fmt="wasm32-unknown-emscripten4")
    proc = reference(str(path), W32, [(SEQUENCE[0], ENV)], expect_ok=False)
    assert proc.returncode != 0 and "importing metering function is not allowed" in proc.stderr
    with pytest.raises(VMError, match="importing metering function is not allowed"):
        runtime().instantiate(path.read_bytes(), format=W32)


def test_formats_keep_their_glue(modules):
    """The unmetered module under the plain format runs unmetered (GasUsed 0 on both sides); the
    metering formats keep their glue's memory width."""
    data, path = modules[W32]
    ref = reference(path, "wasm32-unknown-emscripten4", [(SEQUENCE[0], ENV)])
    res = runtime().instantiate(data, format="wasm32-unknown-emscripten4").handle(SEQUENCE[0], ENV)
    assert res.gas_used == ref[0]["GasUsed"] == 0
    with pytest.raises(VMError, match="64-bit memory"):
        runtime().instantiate(modules[W64][0], format=W32)
    with pytest.raises(VMError, match="32-bit memory"):
        runtime().instantiate(data, format=W64)


def test_cu_registers_the_metering_formats(tmp_path):
    from aonet.cu.engine import default_runtimes
    runtimes = default_runtimes(str(tmp_path))
    assert isinstance(runtimes.get(W32), EmscriptenRuntime) and runtimes[W64] is runtimes[W32]
    assert runtimes[W32] is runtimes["wasm32-unknown-emscripten4"]
    assert "wasm32-unknown-emscripten" not in runtimes


def test_publish_detects_the_metering_formats(modules):
    """An emscripten4 or wasm64 module without a metering.usegas import is one the loader meters."""
    from aonet.vm.metering import meter_wasm
    from aonet.vm.publish import detect_format
    for fmt, (wasm, _) in modules.items():
        assert detect_format(wasm) == fmt
        metered = meter_wasm(wasm, "i64" if fmt.startswith("wasm64") else "i32")
        assert detect_format(metered) == ("wasm64-unknown-emscripten-draft_2024_02_15" if fmt.startswith("wasm64")
                                          else "wasm32-unknown-emscripten4")
