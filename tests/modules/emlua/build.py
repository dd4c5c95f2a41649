"""Build the emlua test module: Lua 5.3 + aonet's process library as an AO `wasm32-unknown-emscripten2`
module, with Debian's `emscripten` (3.1.6) and AO's own gas metering pass (@permaweb/wasm-metering).

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

EMCC_FLAGS = [
    "-O2", "-std=gnu11", "-DLUA_COMPAT_5_2", "-Dluai_makeseed()=0", "-I.",
    "-sALLOW_MEMORY_GROWTH=1", "-sINITIAL_MEMORY=6291456", "-sMAXIMUM_MEMORY=524288000",
    "-sTOTAL_STACK=1048576", "-sMODULARIZE=1", "-sFORCE_FILESYSTEM=1",
    "-sEXPORTED_FUNCTIONS=_main,_handle,_malloc,_free,_fflush", "-sSTACK_OVERFLOW_CHECK=1", "-sEXPORTED_RUNTIME_METHODS=cwrap", "-sERROR_ON_UNDEFINED_SYMBOLS=0",
]


class BuildError(RuntimeError):
    """emcc or the metering pass failed."""


def emcc() -> str | None:
    return shutil.which("emcc")


def _c_array(name: str, data: bytes) -> str:
    body = ",".join(str(b) for b in data)
    return f"static const char {name}[] = {{{body}}};\n"


def own_sources() -> dict[str, bytes]:
    files = {"glue.c": (HERE / "glue.c").read_bytes(), "compat.c": (HERE / "compat.c").read_bytes(),
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


def build_key() -> str:
    h = hashlib.sha256()
    h.update(luabuild.LUPA_SHA256.encode())
    for name, data in sorted(own_sources().items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode())
    h.update("\0".join(EMCC_FLAGS + luabuild.LUA_C).encode())
    h.update(METER_JS.read_bytes())
    h.update(_emcc_version().encode())
    return h.hexdigest()[:32]


def build(force: bool = False) -> Path:
    """The metered module's path in the cache (built first if missing)."""
    if emcc() is None:
        raise BuildError("emcc not found: install Debian's emscripten (make install does)")
    out = luabuild.cache_dir() / "emlua" / f"emlua-{build_key()}.wasm"
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
        cmd = [emcc(), *EMCC_FLAGS, *luabuild.LUA_C, "json.c", "glue.c", "compat.c", "sources.c", "-o", "process.js"]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=_env())
        if proc.returncode != 0:
            raise BuildError(f"emcc failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        proc = subprocess.run(["node", str(METER_JS), "process.wasm", "metered.wasm", "i32"], cwd=work,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"metering failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        tmp_out = out.with_suffix(f".{os.getpid()}.part")
        shutil.copyfile(work / "metered.wasm", tmp_out)
        tmp_out.replace(out)
    return out


if __name__ == "__main__":
    p = build(force="--force" in sys.argv)
    print(p, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
