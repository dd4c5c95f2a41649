"""Build the emlua test module: Lua 5.3 + aonet's process library as an AO module of format
`wasm32-unknown-emscripten2`, `...3` or `...4`, with Debian's `emscripten` (3.1.6) and AO's own gas
metering pass (@permaweb/wasm-metering).

3.1.6 speaks emscripten2's ABI; for the newer formats abi.c redefines the libc helpers so the module
calls the imports the newer glue provides, with their signatures, and wasmedit.py adds the export
names the emscripten4 glue calls (aliases of 3.1.6's identical stack functions). See
docs/emscripten.md for every difference and why each change is exact.

Nothing third-party is kept in the repository: the Lua sources come from the pinned lupa sdist via
aonet.vm.lua.build.  The result is cached under $AONET_CACHE/emlua/ keyed by a hash of every input.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "src"))

from aonet.vm.lua import build as luabuild  # noqa: E402

LUA_LIB = ROOT / "src" / "aonet" / "vm" / "lua"
LIB_FILES = ["json.lua", "bint.lua", "utils.lua", "handlers.lua", "ao.lua", "process.lua"]
METER_JS = ROOT / "tests" / "js" / "aoloader_meter.cjs"
FORMAT = "wasm32-unknown-emscripten2"
FORMATS = ("wasm32-unknown-emscripten2", "wasm32-unknown-emscripten3", "wasm32-unknown-emscripten4")

EMCC_FLAGS = [
    "-O2", "-std=gnu11", "-DLUA_COMPAT_5_2", "-Dluai_makeseed()=0", "-I.",
    "-sALLOW_MEMORY_GROWTH=1", "-sINITIAL_MEMORY=6291456", "-sMAXIMUM_MEMORY=524288000",
    "-sTOTAL_STACK=1048576", "-sMODULARIZE=1", "-sFORCE_FILESYSTEM=1",
    "-sEXPORTED_FUNCTIONS=_main,_handle,_malloc,_free,_fflush", "-sSTACK_OVERFLOW_CHECK=1", "-sEXPORTED_RUNTIME_METHODS=cwrap", "-sERROR_ON_UNDEFINED_SYMBOLS=0",
]


# what each newer format adds (EMCC_FLAGS' EXPORTED_FUNCTIONS is replaced by "exports")
PROFILES: dict[str, dict] = {
    "wasm32-unknown-emscripten3": {
        "defines": ["-DEMLUA_ABI=3", '-DEMLUA_DATE_NOW="emscripten_date_now"'],
        "exports": "_main,_handle,_malloc,_free,_fflush,_setTempRet0,_emscripten_stack_get_current",
        "flags": [],
        "aliases": {},
    },
    "wasm32-unknown-emscripten4": {
        "defines": ["-DEMLUA_ABI=4", '-DEMLUA_DATE_NOW="emscripten_date_now"', "-Dmain=emlua_main",
                    "-DEMLUA_OPEN_EXTRA=emlua_open_extra"],
        "exports": "_handle,_malloc,_free,_fflush,__emscripten_tempret_set,_emscripten_stack_get_current",
        "flags": ["--no-entry", "-sASYNCIFY=1", "-sASYNCIFY_IMPORTS=['__asyncjs__weavedrive_open']",
                  "-sDYNCALLS=1"],
        # newer name -> 3.1.6 export with the same body (compiler-rt/stack_ops.S)
        "aliases": {"_emscripten_stack_restore": "stackRestore", "_emscripten_stack_alloc": "stackAlloc"},
    },
}


def emcc_flags(fmt: str = FORMAT) -> list[str]:
    if fmt == FORMAT:
        return list(EMCC_FLAGS)
    if fmt not in PROFILES:
        raise BuildError(f"no emlua profile for {fmt}")
    prof = PROFILES[fmt]
    flags = [f for f in EMCC_FLAGS if not f.startswith("-sEXPORTED_FUNCTIONS=")]
    return flags + [f"-sEXPORTED_FUNCTIONS={prof['exports']}", *prof["defines"], *prof["flags"]]


class BuildError(RuntimeError):
    """emcc or the metering pass failed."""


def emcc() -> str | None:
    return shutil.which("emcc")


def _c_array(name: str, data: bytes) -> str:
    body = ",".join(str(b) for b in data)
    return f"static const char {name}[] = {{{body}}};\n"


def own_sources() -> dict[str, bytes]:
    files = {"glue.c": (HERE / "glue.c").read_bytes(), "compat.c": (HERE / "compat.c").read_bytes(),
             "abi.c": (HERE / "abi.c").read_bytes(), "wasmedit.py": (HERE / "wasmedit.py").read_bytes(),
             "entry.lua": (HERE / "entry.lua").read_bytes(),
             "json.c": (LUA_LIB / "json.c").read_bytes()}
    files.update({f"lib/{n}": (LUA_LIB / "lib" / n).read_bytes() for n in LIB_FILES})
    return files


def generated_sources(own: dict[str, bytes]) -> str:
    """The Lua files as C arrays (Debian's clang 14 has no #embed)."""
    out = ['#include <stddef.h>\n',
           'struct lua_module { const char *name; const char *chunkname; const char *src; size_t len; };\n']
    for i, name in enumerate(LIB_FILES):
        out.append(_c_array(f"SRC{i}", own[f"lib/{name}"]))
    out.append("const struct lua_module EMLUA_MODULES[] = {\n")
    for i, name in enumerate(LIB_FILES):
        mod = name[:-4]
        out.append(f'  {{"{mod}", "@aonet/{name}", SRC{i}, sizeof SRC{i}}},\n')
    out.append("};\n")
    out.append(f"const size_t EMLUA_MODULE_COUNT = {len(LIB_FILES)};\n")
    out.append(_c_array("EMLUA_ENTRY", own["entry.lua"]).replace("static ", ""))
    out.append("const size_t EMLUA_ENTRY_LEN = sizeof EMLUA_ENTRY;\n")
    return "".join(out)


def _emcc_version() -> str:
    proc = subprocess.run([emcc() or "emcc", "--version"], capture_output=True, text=True, env=_env())
    return proc.stdout.splitlines()[0] if proc.returncode == 0 and proc.stdout else "unknown"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NODE_PATH", "/usr/share/nodejs")
    return env


def build_key(fmt: str = FORMAT, meter: bool = True) -> str:
    h = hashlib.sha256()
    if not meter:                       # opt-in: the module as emcc left it (for the *-metering formats)
        h.update(b"unmetered\0")
    if fmt != FORMAT:
        h.update(fmt.encode() + repr(sorted(PROFILES[fmt]["aliases"].items())).encode())
    h.update(luabuild.LUPA_SHA256.encode())
    for name, data in sorted(own_sources().items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode())
    h.update("\0".join(emcc_flags(fmt) + luabuild.LUA_C).encode())
    h.update(METER_JS.read_bytes())
    h.update(_emcc_version().encode())
    return h.hexdigest()[:32]


def build(force: bool = False, fmt: str = FORMAT, meter: bool = True) -> Path:
    """The metered module's path in the cache (built first if missing). `meter=False` skips AO's
    metering pass (what `wasm32-unknown-emscripten-metering` expects: the loader meters it itself)."""
    if emcc() is None:
        raise BuildError("emcc not found: install Debian's emscripten (make install does)")
    flags = emcc_flags(fmt)
    suffix = "" if fmt == FORMAT else f"-{fmt.rsplit('-', 1)[-1]}"
    if not meter:
        suffix += "-unmetered"
    out = luabuild.cache_dir() / "emlua" / f"emlua{suffix}-{build_key(fmt, meter)}.wasm"
    if out.exists() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aonet-emlua-") as tmp:
        work = Path(tmp)
        own = own_sources()
        for name, data in {**luabuild.lua_sources(luabuild.fetch_sdist()), **own}.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_bytes(data)
        (work / "sources.c").write_text(generated_sources(own))
        extra = [] if fmt == FORMAT else ["abi.c"]
        cmd = [emcc(), *flags, *luabuild.LUA_C, "json.c", "glue.c", "compat.c", *extra, "sources.c", "-o", "process.js"]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=_env())
        if proc.returncode != 0:
            raise BuildError(f"emcc failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        if meter:
            proc = subprocess.run(["node", str(METER_JS), "process.wasm", "metered.wasm", "i32"], cwd=work,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise BuildError(f"metering failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        tmp_out = out.with_suffix(f".{os.getpid()}.part")
        metered = (work / ("metered.wasm" if meter else "process.wasm")).read_bytes()
        aliases = PROFILES.get(fmt, {}).get("aliases")
        if aliases:
            sys.path.insert(0, str(HERE))
            import wasmedit
            metered = wasmedit.edit(metered, aliases=aliases)
        tmp_out.write_bytes(metered)
        tmp_out.replace(out)
    return out


if __name__ == "__main__":
    fmts = [a for a in sys.argv[1:] if a.startswith("wasm")] or [FORMAT]
    for f in fmts:
        p = build(force="--force" in sys.argv, fmt=f, meter="--no-meter" not in sys.argv)
        print(f, p, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
