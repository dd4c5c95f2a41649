"""aonet's emscripten host against ao-loader's newer glues, message for message:
`wasm32-unknown-emscripten3` and `wasm32-unknown-emscripten4` (Asyncify).

The emlua module is built for each format from the same sources with Debian's emscripten 3.1.6
(tests/modules/emlua: abi.c gives it the newer glue's imports, wasmedit.py the newer export names;
docs/emscripten.md lists every change). Each build is cached like the emscripten2 one. Results,
GasUsed and the memory bytes after every message must equal the loader's.
"""
from __future__ import annotations

import re

import pytest
import wasmtime

from aonet.vm.base import Limits, VMError
from aonet.vm.emscripten import EmscriptenRuntime
from aonet.vm.emscripten_profile import ASYNCIFY_STACK_SIZE

from test_emscripten import (ENV, LOADER, SEQUENCE, _load_builder, _msg, _need_tools, emlua,  # noqa: F401
                             fresh_instance_continues, images_match_loader, result_is_loaders, run_loader, runtime)

FORMATS = ("wasm32-unknown-emscripten3", "wasm32-unknown-emscripten4")
# emscripten4 only: drive_open calls the glue's async import, which unwinds and rewinds the stack
DRIVE = [_msg(13, "Eval", 'return drive_open("/data/some-tx")'), _msg(14, "Inc"),
         _msg(15, "Eval", 'return drive_open("/data/other", "r") + drive_open("/data/third")'),
         _msg(16, "Eval", "local a = gas_used(); local b = gas_used(); return string.format('%d %s', a, b > a)")]


@pytest.fixture(scope="session")
def newer() -> dict[str, tuple[bytes, str]]:
    """format -> (module bytes, cached path): built once per session, cached across sessions."""
    _need_tools()
    builder = _load_builder()
    out = {}
    for fmt in FORMATS:
        path = builder.build(fmt=fmt)
        out[fmt] = (path.read_bytes(), str(path))
    return out


# both formats: localtime + the glue's tzset zone name (%Z) and strftime, files with a legalized fd_seek
MORE = [_msg(40, "Eval", 'return os.date("%c|%Z|%z|%x", 86400*365) .. " " .. os.date("!%c", 0)'),
        _msg(41, "Eval", 'local f = assert(io.open("/tmp/x", "w")); f:write("hi there"); f:close(); '
                         'local g = io.open("/tmp/x"); local s = g:read("a"); local p = g:seek("set", 3); '
                         'local t = g:read(2); g:close(); return s .. "|" .. p .. "|" .. t')]
ZONE = {"wasm32-unknown-emscripten3": "Coordi", "wasm32-unknown-emscripten4": "UTC"}


def sequence(fmt: str) -> list[dict]:
    return SEQUENCE + (DRIVE if fmt.endswith("4") else []) + MORE


def reference(path: str, fmt: str, messages, options: dict | None = None, expect_ok: bool = True,
              program: str | None = None):
    return run_loader(path, fmt, messages, options=options, expect_ok=expect_ok, program=program)


def _glue_imports(fmt: str) -> set[str]:
    src = (LOADER / "dist" / "index.cjs").read_text()
    start = src.index(f"src/formats/emscripten{fmt[-1]}.cjs\"(")
    block = src[src.index("var wasmImports = {", start):]
    block = block[:block.index("};")]
    return set(re.findall(r"^\s+(?:/\*\*.*?\*/\s*)?([A-Za-z_$][\w$]*)\s*[:,]", block, re.M))


@pytest.mark.parametrize("fmt", FORMATS)
def test_module_speaks_the_newer_glue(newer, fmt):
    """Every import is one the glue provides (under its new name) and every export it calls exists."""
    data, _ = newer[fmt]
    module = wasmtime.Module(wasmtime.Engine(), data)
    provided = _glue_imports(fmt)
    names = {i.name for i in module.imports if i.module != "metering"}
    assert names <= provided, names - provided
    assert not names & {"getTempRet0", "setTempRet0", "system", "_emscripten_date_now", "emscripten_memcpy_big"}
    exports = {e.name for e in module.exports}
    if fmt.endswith("3"):
        assert {"stackSave", "stackRestore", "stackAlloc", "setTempRet0", "main"} <= exports
    else:
        assert {"_emscripten_stack_restore", "_emscripten_stack_alloc", "emscripten_stack_get_current",
                "_emscripten_tempret_set", "dynCall_vii", "asyncify_start_unwind"} <= exports
        assert "main" not in exports
        assert "__asyncjs__weavedrive_open" in names


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_results_memory_and_gas_as_ao_loader(newer, fmt):
    data, path = newer[fmt]
    messages = [(m, ENV) for m in sequence(fmt)]
    ref = reference(path, fmt, messages)
    inst = runtime().instantiate(data, format=fmt)
    assert len(ref) == len(messages)
    outs = []
    for i, ((msg, env), r) in enumerate(zip(messages, ref)):
        res = inst.handle(msg, env)
        outs.append(res)
        assert "thrown" not in r, (i, r)
        result_is_loaders(res, r, i)
        assert {"length": inst.memory_size(), "sha256": inst.memory_hash()} == r["memory"], i
    assert outs[2].output["data"] == "count 1"
    assert outs[3].messages[0]["Data"] == "pong héllo ✓ 𝄞"
    assert "failing on purpose" in outs[6].error and outs[7].output["data"] == "count 2"
    assert outs[9].output["data"] == "2023-11-14 22:13:20 Tuesday 318"
    assert ref[10]["memory"]["length"] > 6291456                       # the heap grew like the glue grows it
    zone = ZONE[fmt]
    assert outs[-2].output["data"] == f"Fri Jan 01 00:00:00 1971|{zone}|+0000|01/01/71 Thu Jan 01 00:00:00 1970"
    assert outs[-1].output["data"] == "hi there|3|th"
    if fmt.endswith("4"):
        # the async import unwound the stack into a 12 + 40 MiB buffer the glue mallocs, rewound, returned 0
        assert outs[13].output["data"] == "0" and outs[14].output["data"] == "count 3"
        assert ref[13]["memory"]["length"] >= ref[12]["memory"]["length"] + ASYNCIFY_STACK_SIZE
        assert outs[15].output["data"] == "0"
        used, grew = outs[16].output["data"].split()          # the glue's metering_gasUsed, mid-message
        assert 0 < int(used) < outs[16].gas_used and grew == "true"


@pytest.mark.parametrize("fmt", FORMATS)
def test_out_of_gas_and_rollback_match_loader(newer, fmt):
    data, path = newer[fmt]
    messages = [(SEQUENCE[0], ENV), (SEQUENCE[1], ENV), (_msg(20, "Eval", "while true do end"), ENV),
                (_msg(21, "Inc"), ENV)]
    ref = reference(path, fmt, messages, {"computeLimit": 2_000_000_000})
    inst = runtime().instantiate(data, Limits(compute=2_000_000_000), format=fmt)
    ours = [inst.handle(m, e) for m, e in messages[:2]]
    assert ref[2] == {"thrown": "out of gas!", "memory": ref[1]["memory"]}
    assert inst.handle(*messages[2]).error == "out of gas!"
    assert inst.memory_hash() == ref[2]["memory"]["sha256"]
    last = inst.handle(*messages[3])
    assert last.output["data"] == "count 1" and last.gas_used == ref[3]["GasUsed"]
    assert inst.memory_hash() == ref[3]["memory"]["sha256"] and ours[1].gas_used == ref[1]["GasUsed"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_memory_passed_per_message_matches_loader(newer, fmt):
    """restore(image) + handle + snapshot_image() per message, as AO's CU drives its loader, and a fresh
    instance restored from an image continues exactly like the loader given that Memory."""
    data, path = newer[fmt]
    msgs = [SEQUENCE[0], SEQUENCE[1], SEQUENCE[2]] + ([DRIVE[0]] if fmt.endswith("4") else []) + [_msg(30, "Inc")]
    messages = [(m, ENV) for m in msgs]
    ref = reference(path, fmt, messages)
    inst = runtime().instantiate(data, format=fmt)
    images = images_match_loader(inst, messages, ref)
    fresh_instance_continues(runtime().instantiate(data, image=bytes(images[-2]), format=fmt), messages[-1], ref[-1])


@pytest.mark.parametrize("fmt,first", [("wasm32-unknown-emscripten3", "getTempRet0"),
                                       ("wasm32-unknown-emscripten4", "abort")])
def test_emscripten2_module_is_refused_as_the_loader_refuses_it(emlua, fmt, first):  # noqa: F811
    """The loader cannot link 3.1.6's emscripten2-era module under the newer glue; aonet refuses it
    with the same import named, instead of running it with semantics the loader would not have."""
    path = _load_builder().build()
    proc = reference(str(path), fmt, [(SEQUENCE[0], ENV)], expect_ok=False)
    assert proc.returncode != 0
    assert 'LinkError: WebAssembly.instantiate(): Import #' in proc.stderr
    assert f'module="env" function="{first}"' in proc.stderr
    with pytest.raises(VMError, match=f"imports env.{first}, which ao-loader's {fmt} glue does not provide"):
        runtime().instantiate(emlua, format=fmt)


def test_formats_are_not_mixed_up(newer):
    """An Asyncify module is not run as emscripten3, nor an emscripten3 module as emscripten4."""
    rt = runtime()
    with pytest.raises(VMError):
        rt.instantiate(newer["wasm32-unknown-emscripten4"][0], format="wasm32-unknown-emscripten3")
    with pytest.raises(VMError, match="_emscripten_stack_restore|emscripten_stack|does not provide"):
        rt.instantiate(newer["wasm32-unknown-emscripten3"][0], format="wasm32-unknown-emscripten4")
    with pytest.raises(VMError, match="not supported"):
        rt.instantiate(newer["wasm32-unknown-emscripten3"][0], format="wasm32-unknown-emscripten-metering")


def test_cu_registers_the_served_formats(tmp_path):
    from aonet.cu.engine import default_runtimes
    from aonet.vm.emscripten import UNSUPPORTED_FORMATS
    runtimes = default_runtimes(str(tmp_path))
    served = [runtimes.get(f) for f in ("wasm32-unknown-emscripten2", *FORMATS)]
    assert all(isinstance(rt, EmscriptenRuntime) for rt in served) and len({id(rt) for rt in served}) == 1
    assert not set(UNSUPPORTED_FORMATS) & set(runtimes)


def test_publish_detects_each_format(newer):
    from aonet.vm.publish import detect_format
    for fmt, (wasm, _) in newer.items():
        assert detect_format(wasm) == fmt
