"""Build the Lua process module (Lua 5.3.6 + aonet's glue and process library) reproducibly.

No third-party C is kept in the repository: the Lua sources come from the PyPI sdist of `lupa==2.8`
(pinned by sha256), the compiler from PyPI `ziglang` (pinned in pyproject.toml). The module is built
once into the cache ($AONET_CACHE or ~/.cache/aonet) under a key that hashes every input, so a changed
flag, glue or Lua library file gives a new build and an unchanged tree reuses the old one.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

LUPA_VERSION = "2.8"
LUPA_SDIST = f"lupa-{LUPA_VERSION}.tar.gz"
LUPA_SHA256 = "d8022641b9ec8ecf2c5ecbe9f47e5a70e0b87c4b5ae921b92cb02a638e0acd08"
LUPA_URL = ("https://files.pythonhosted.org/packages/c3/a6/0f869fbb07c393f15473b1eefefb7b5bec162fb7481803d040ed4dc46002/"
            + LUPA_SDIST)
LUA_DIR = f"lupa-{LUPA_VERSION}/third-party/lua53/"

# The Lua 5.3.6 core and standard library (no lua.c / luac.c / ltests.c / linit.c is needed by the glue,
# but linit.c provides luaL_openlibs).
LUA_C = [
    "lapi.c", "lcode.c", "lctype.c", "ldebug.c", "ldo.c", "ldump.c", "lfunc.c", "lgc.c", "llex.c",
    "lmem.c", "lobject.c", "lopcodes.c", "lparser.c", "lstate.c", "lstring.c", "ltable.c", "ltm.c",
    "lundump.c", "lvm.c", "lzio.c", "lauxlib.c", "lbaselib.c", "lbitlib.c", "lcorolib.c", "ldblib.c",
    "liolib.c", "lmathlib.c", "loslib.c", "lstrlib.c", "ltablib.c", "lutf8lib.c", "loadlib.c", "linit.c",
]
LUA_H = [
    "lapi.h", "lauxlib.h", "lcode.h", "lctype.h", "ldebug.h", "ldo.h", "lfunc.h", "lgc.h", "llex.h",
    "llimits.h", "lmem.h", "lobject.h", "lopcodes.h", "lparser.h", "lprefix.h", "lstate.h", "lstring.h",
    "ltable.h", "ltm.h", "lua.h", "luaconf.h", "lualib.h", "lundump.h", "lvm.h", "lzio.h",
]

HERE = Path(__file__).resolve().parent
GLUE_FILES = ["glue.c", "json.c", "wasi_compat.h"]
LIB_FILES = ["json.lua", "bint.lua", "utils.lua", "handlers.lua", "ao.lua", "process.lua", "main.lua"]

CFLAGS = [
    "-target", "wasm32-wasi", "-O2", "-std=gnu17", "-mexec-model=reactor",
    # setjmp/longjmp (Lua's error handling) lowered to wasm exceptions (exnref)
    "-mexception-handling", "-mllvm", "-wasm-enable-sjlj", "-mllvm", "-wasm-use-legacy-eh=false",
    "-DLUA_COMPAT_5_2", "-Dluai_makeseed()=0", "-D_WASI_EMULATED_PROCESS_CLOCKS",
    "-D_WASI_EMULATED_SIGNAL",
    "-include", "wasi_compat.h", "-I.", "-Wno-c23-extensions", "-fno-ident",
]
LDFLAGS = ["-Wl,-z,stack-size=1048576", "-Wl,--strip-all", "-lwasi-emulated-process-clocks",
           "-lwasi-emulated-signal"]

# The sha256 of the module these inputs give; tests/test_lua_build.py checks it. Update it (and say
# so) whenever glue.c, lib/*.lua, the flags or the pinned tools change.
MODULE_SHA256 = "b4b146a6440d2761ca7c567bd47fd15a17a74359a01c677f0b266c070188223f"


class BuildError(RuntimeError):
    """The Lua module could not be built (download, checksum or compiler failure)."""


def cache_dir() -> Path:
    root = os.environ.get("AONET_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "aonet"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_sdist() -> bytes:
    """The lupa sdist bytes, from the cache or PyPI; always checked against LUPA_SHA256."""
    path = cache_dir() / "downloads" / LUPA_SDIST
    if path.exists():
        data = path.read_bytes()
        if _sha256(data) == LUPA_SHA256:
            return data
    data = _download()
    if _sha256(data) != LUPA_SHA256:
        raise BuildError(f"{LUPA_SDIST}: sha256 {_sha256(data)} is not the pinned {LUPA_SHA256}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


def _download() -> bytes:
    try:
        import httpx
        r = httpx.get(LUPA_URL, timeout=300, follow_redirects=True)
        r.raise_for_status()
        return r.content
    except Exception as http_error:  # fall back to pip, which honours the local index configuration
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--no-build-isolation", "-d", tmp, f"lupa=={LUPA_VERSION}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            found = Path(tmp) / LUPA_SDIST
            if proc.returncode != 0 or not found.exists():
                raise BuildError(f"cannot download {LUPA_SDIST}: {http_error}; pip: {proc.stderr[-500:]}")
            return found.read_bytes()


def lua_sources(sdist: bytes) -> dict[str, bytes]:
    """Only the Lua 5.3 C sources and headers the module needs, read from the sdist in memory."""
    wanted = {LUA_DIR + name: name for name in LUA_C + LUA_H}
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as tar:
        for member in tar:
            name = wanted.get(member.name)
            if name and member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                out[name] = f.read()
    missing = sorted(set(wanted.values()) - set(out))
    if missing:
        raise BuildError(f"{LUPA_SDIST} lacks {missing}")
    return out


def own_sources() -> dict[str, bytes]:
    """aonet's glue and process library, as the module embeds them."""
    files = {name: (HERE / name).read_bytes() for name in GLUE_FILES}
    files.update({f"lib/{name}": (HERE / "lib" / name).read_bytes() for name in LIB_FILES})
    return files


def zig_version() -> str:
    """The installed PyPI ziglang version (part of the cache key; cheaper than running zig)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("ziglang")
    except PackageNotFoundError:
        raise BuildError("the PyPI package ziglang is not installed (pyproject.toml pins it)") from None


def build_key() -> str:
    """A hash of every build input: pinned sdist, own sources, flags and compiler version."""
    h = hashlib.sha256()
    h.update(LUPA_SHA256.encode())
    for name, data in sorted(own_sources().items()):
        h.update(name.encode() + b"\0" + _sha256(data).encode())
    h.update("\0".join(CFLAGS + LDFLAGS + LUA_C).encode())
    h.update(zig_version().encode())
    return h.hexdigest()[:32]


def compile_module(workdir: Path) -> bytes:
    """Write the sources into workdir and compile them; returns the module bytes."""
    for name, data in {**lua_sources(fetch_sdist()), **own_sources()}.items():
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    cmd = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, *LUA_C, "glue.c", "json.c", *LDFLAGS, "-o", "lua.wasm"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"zig cc failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return (workdir / "lua.wasm").read_bytes()


def build(force: bool = False) -> Path:
    """Build the module if the cache lacks it; returns the path of the cached .wasm."""
    out = cache_dir() / "lua" / f"lua53-{build_key()}.wasm"
    if out.exists() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aonet-lua-") as tmp:
        data = compile_module(Path(tmp))
    tmp_out = out.with_suffix(f".{os.getpid()}.part")
    tmp_out.write_bytes(data)
    tmp_out.replace(out)
    return out


def main() -> None:
    path = build(force="--force" in sys.argv)
    data = path.read_bytes()
    print(f"{path} {len(data)} bytes sha256 {_sha256(data)}")


if __name__ == "__main__":
    main()
