"""Build the emlua test module (Lua 5.3 + aonet's process library) for AO's
`wasm64-unknown-emscripten-draft_2024_02_15` format with Debian's emscripten 3.1.6 (-sMEMORY64=1).

Debian's emscripten ships the system library sources but a frozen cache with only the wasm32
libraries, so this build makes a private emscripten configuration under $AONET_CACHE/emscripten64/
(Debian's, with its own writable cache, FROZEN_CACHE off, and NODE_JS pointing at a small wrapper that
drops the `--experimental-wasm-bigint` flag Node 20 no longer knows and adds
`--experimental-wasm-memory64`). The first build compiles the wasm64 libc, dlmalloc and compiler-rt
into that cache (about two minutes); later builds reuse them.

The module: the same sources as tests/modules/emlua (glue.c, entry.lua, json.c, the Lua library,
read from there), plus abi64.c and ldo64.h here, which give it the imports the loader's wasm64 glue
provides (IMPORTS below, each with its wasm signature). After the link, two export aliases give it
the newer names the glue calls (ALIASES), and AO's metering pass adds `metering.usegas` (i64, as the
loader meters wasm64). The result is cached under $AONET_CACHE/emlua/ keyed by a hash of every input.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EMLUA = ROOT / "tests" / "modules" / "emlua"
METER_JS = ROOT / "tests" / "js" / "aoloader_meter.cjs"
FORMAT = "wasm64-unknown-emscripten-draft_2024_02_15"
METER_TYPE = "i64"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod          # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


emlua = _load("emlua_build_for_64", EMLUA / "build.py")     # read-only: sources and the Lua build
wasmedit = _load("emlua_wasmedit_for_64", EMLUA / "wasmedit.py")
sys.path.insert(0, str(HERE))
import wasm64info  # noqa: E402

luabuild = emlua.luabuild

EMCC_FLAGS = [
    "-sMEMORY64=1", "-O2", "-std=gnu11", "-DLUA_COMPAT_5_2", "-Dluai_makeseed()=0", "-I.",
    "-include", "ldo64.h", "-Dmain=emlua_main", "-DEMLUA_OPEN_EXTRA=emlua_open_extra",
    "-sALLOW_MEMORY_GROWTH=1", "-sINITIAL_MEMORY=6291456", "-sMAXIMUM_MEMORY=524288000",
    "-sTOTAL_STACK=1048576", "-sMODULARIZE=1", "-sFORCE_FILESYSTEM=1", "-sSTACK_OVERFLOW_CHECK=1",
    "-sEXPORTED_RUNTIME_METHODS=cwrap", "-sERROR_ON_UNDEFINED_SYMBOLS=0", "--no-entry",
    "-sEXPORTED_FUNCTIONS=_handle,_malloc,_free,_fflush,_setThrew,_emscripten_stack_get_current",
]

# newer export name -> 3.1.6 export with the same body (compiler-rt stack_ops.S: restore sets the
# stack pointer global; alloc subtracts the size, aligns down to 16 and sets it; both i64 in wasm64)
ALIASES = {"_emscripten_stack_restore": "stackRestore", "_emscripten_stack_alloc": "stackAlloc"}

# what the module imports (after abi64.c), with the wasm signatures: every one is in the glue's
# wasmImports under this name, and the glue's function takes these parameters (pointers and size_t
# as i64 BigInts, converted with bigintToI53Checked; an i64 result is returned as a BigInt)
IMPORTS = [
    ("env", "strftime", "(i64 i64 i64 i64) -> i64"),
    ("env", "exit", "(i32) -> nil"),
    ("env", "invoke_vjj", "(i64 i64 i64) -> nil"),
    ("env", "_emscripten_throw_longjmp", "() -> nil"),
    ("env", "__syscall_openat", "(i32 i64 i32 i64) -> i32"),
    ("env", "__syscall_fcntl64", "(i32 i32 i64) -> i32"),
    ("env", "__syscall_ioctl", "(i32 i32 i64) -> i32"),
    ("env", "__syscall_dup3", "(i32 i32 i32) -> i32"),
    ("env", "__syscall_unlinkat", "(i32 i64 i32) -> i32"),
    ("env", "__syscall_rmdir", "(i64) -> i32"),
    ("env", "__syscall_renameat", "(i32 i64 i32 i64) -> i32"),
    ("env", "__syscall_lstat64", "(i64 i64) -> i32"),
    ("env", "_emscripten_memcpy_js", "(i64 i64 i64) -> nil"),
    ("env", "_emscripten_system", "(i64) -> i32"),
    ("env", "_abort_js", "() -> nil"),
    ("env", "emscripten_date_now", "() -> f64"),
    ("env", "_tzset_js", "(i64 i64 i64 i64) -> nil"),
    ("env", "_mktime_js", "(i64) -> i64"),
    ("env", "_localtime_js", "(i64 i64) -> nil"),
    ("env", "_gmtime_js", "(i64 i64) -> nil"),
    ("env", "metering_gasUsed", "() -> f64"),
    ("wasi_snapshot_preview1", "fd_write", "(i32 i64 i64 i64) -> i32"),
    ("wasi_snapshot_preview1", "fd_read", "(i32 i64 i64 i64) -> i32"),
    ("wasi_snapshot_preview1", "fd_close", "(i32) -> i32"),
    ("wasi_snapshot_preview1", "environ_sizes_get", "(i64 i64) -> i32"),
    ("wasi_snapshot_preview1", "environ_get", "(i64 i64) -> i32"),
    ("wasi_snapshot_preview1", "fd_seek", "(i32 i64 i32 i64) -> i32"),
    ("env", "emscripten_resize_heap", "(i64) -> i32"),
    ("metering", "usegas", "(i64) -> nil"),
]

NODE_WRAPPER = """#!/bin/sh
# emscripten 3.1.6 runs node with --experimental-wasm-bigint (unknown to Node 20, where BigInt
# integration is on by default); memory64 still needs its flag there.
for a in "$@"; do shift; case "$a" in --experimental-wasm-bigint) ;; *) set -- "$@" "$a";; esac; done
exec {node} --experimental-wasm-memory64 "$@"
"""


class BuildError(RuntimeError):
    """The private emscripten configuration, emcc or the post-link steps failed."""


def emcc() -> str | None:
    return shutil.which("emcc")


def toolchain_dir() -> Path:
    return luabuild.cache_dir() / "emscripten64"


def _debian_config() -> Path:
    """Debian's .emscripten, next to the real emcc (/usr/bin/emcc links to /usr/share/emscripten/)."""
    path = emcc()
    if path is None:
        raise BuildError("emcc not found: install Debian's emscripten (make emscripten)")
    cfg = Path(os.path.realpath(path)).parent / ".emscripten"
    if not cfg.exists():
        raise BuildError(f"no emscripten config at {cfg}")
    return cfg


def _write_if_changed(path: Path, text: str, mode: int | None = None) -> None:
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    if mode is not None:
        tmp.chmod(mode)
    tmp.replace(path)


def ensure_toolchain() -> Path:
    """The private emscripten config (created or refreshed): Debian's, with a writable cache."""
    node = shutil.which("node")
    if node is None:
        raise BuildError("node not found")
    root = toolchain_dir()
    (root / "cache").mkdir(parents=True, exist_ok=True)
    wrapper = root / "node"
    _write_if_changed(wrapper, NODE_WRAPPER.format(node=node), 0o755)
    keep = [line for line in _debian_config().read_text().splitlines()
            if not line.startswith(("FROZEN_CACHE", "CACHE", "NODE_JS"))]
    keep += [f"NODE_JS = {str(wrapper)!r}", f"CACHE = {str(root / 'cache')!r}", "FROZEN_CACHE = False", ""]
    _write_if_changed(root / "config", "\n".join(keep))
    return root / "config"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NODE_PATH", "/usr/share/nodejs")     # Debian's acorn, for emcc's JS optimizer
    env["EM_CONFIG"] = str(ensure_toolchain())
    return env


def own_sources() -> dict[str, bytes]:
    files = {n: data for n, data in emlua.own_sources().items()
             if n not in ("compat.c", "abi.c", "wasmedit.py")}          # abi64.c replaces both
    for name in ("abi64.c", "ldo64.h", "wasm64info.py"):
        files[name] = (HERE / name).read_bytes()
    files["emlua/wasmedit.py"] = (EMLUA / "wasmedit.py").read_bytes()
    return files


def _emcc_version() -> str:
    proc = subprocess.run([emcc() or "emcc", "--version"], capture_output=True, text=True, env=_env())
    return proc.stdout.splitlines()[0] if proc.returncode == 0 and proc.stdout else "unknown"


def build_key(meter: bool = True) -> str:
    h = hashlib.sha256()
    if not meter:                       # opt-in: no metering pass (for the *-metering format)
        h.update(b"unmetered\0")
    h.update(FORMAT.encode() + METER_TYPE.encode() + repr(sorted(ALIASES.items())).encode())
    h.update(luabuild.LUPA_SHA256.encode())
    for name, data in sorted(own_sources().items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode())
    h.update("\0".join(EMCC_FLAGS + luabuild.LUA_C).encode())
    h.update(METER_JS.read_bytes())
    h.update(_emcc_version().encode())
    return h.hexdigest()[:32]


def build(force: bool = False, meter: bool = True) -> Path:
    """The metered wasm64 module's path in the cache (built first if missing). `meter=False` skips AO's
    metering pass (what `wasm64-unknown-emscripten-draft_2024_10_16-metering` expects)."""
    if emcc() is None:
        raise BuildError("emcc not found: install Debian's emscripten (make emscripten)")
    name = "emlua-wasm64" if meter else "emlua-wasm64-unmetered"
    out = luabuild.cache_dir() / "emlua" / f"{name}-{build_key(meter)}.wasm"
    if out.exists() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    env = _env()
    with tempfile.TemporaryDirectory(prefix="aonet-emlua64-") as tmp:
        work = Path(tmp)
        own = own_sources()
        for name, data in {**luabuild.lua_sources(luabuild.fetch_sdist()), **own}.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_bytes(data)
        (work / "sources.c").write_text(emlua.generated_sources(own))
        cmd = [emcc(), *EMCC_FLAGS, *luabuild.LUA_C, "json.c", "glue.c", "abi64.c", "sources.c", "-o", "process.js"]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise BuildError(f"emcc failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        if "signature mismatch" in proc.stderr:      # wasm-ld would have turned those calls into traps
            raise BuildError(f"wasm-ld reported a signature mismatch:\n{proc.stderr[-4000:]}")
        linked = wasmedit.edit((work / "process.wasm").read_bytes(), aliases=ALIASES)
        (work / "aliased.wasm").write_bytes(linked)
        if meter:
            proc = subprocess.run(["node", str(METER_JS), "aliased.wasm", "metered.wasm", METER_TYPE], cwd=work,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise BuildError(f"metering failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        metered = (work / ("metered.wasm" if meter else "aliased.wasm")).read_bytes()
        got = wasm64info.read(metered).imports
        want = IMPORTS if meter else [i for i in IMPORTS if i[0] != "metering"]
        if sorted(got) != sorted(want):
            raise BuildError(f"the module's imports are not the expected ones: {sorted(set(got) ^ set(want))}")
        tmp_out = out.with_suffix(f".{os.getpid()}.part")
        tmp_out.write_bytes(metered)
        tmp_out.replace(out)
    return out


if __name__ == "__main__":
    p = build(force="--force" in sys.argv, meter="--no-meter" not in sys.argv)
    print(FORMAT, p, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    if "--imports" in sys.argv:
        info = wasm64info.read(p.read_bytes())
        for mod, name, sig in info.imports:
            print(f"import {mod}.{name} {sig}")
        for name, sig in info.exports.items():
            print(f"export {name} {sig}")
        print("memory", info.memory)
