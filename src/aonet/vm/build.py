"""Build C sources into aonet ABI modules with zig's clang (PyPI `ziglang`), cached by content.

Why: the test modules, Lua and CPython runtimes are all C built for wasm32-wasi reactors. A build
takes seconds (the first one ~20 s while zig builds wasi-libc), so the result is cached under
`$AONET_CACHE/wasm-build` (default `~/.cache/aonet/wasm-build`), keyed by the sha256 of the sources,
the headers beside them, the flags and the zig version.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

TARGETS = ("wasm32-wasi", "wasm64-freestanding")

# wasm32-wasi reactor defaults: exports malloc/free for the host; a 1 MiB stack keeps images small.
WASI_FLAGS = ("-mexec-model=reactor", "-O2", "-s", "-Wl,-z,stack-size=1048576",
              "-Wl,--export=malloc", "-Wl,--export=free")
# setjmp/longjmp lowered to wasm exceptions (exnref), as the Lua runtime needs.
SJLJ_FLAGS = ("-mexception-handling", "-mllvm", "-wasm-enable-sjlj", "-mllvm", "-wasm-use-legacy-eh=false")
# zig's wasi-libc throws the tag __c_longjmp but does not define it.
SJLJ_TAG_SOURCE = '__asm__(".globl __c_longjmp\\n.tagtype __c_longjmp i32\\n__c_longjmp:\\n");\n'
# wasm64 has no libc in zig: freestanding, the module brings its own malloc and exports.
WASM64_FLAGS = ("-nostdlib", "-O2", "-s", "-Wl,--no-entry", "-Wl,-z,stack-size=1048576")

class BuildError(Exception):
    """The compiler failed; the message holds its output."""


def cache_root() -> Path:
    return Path(os.environ.get("AONET_CACHE") or Path.home() / ".cache" / "aonet")


def _zig_version() -> str:
    try:
        from importlib.metadata import version
        return version("ziglang")
    except Exception:  # noqa: BLE001 - a missing dist just means no version in the key
        return "unknown"


def _is_path(src) -> bool:
    if isinstance(src, os.PathLike):
        return True
    return isinstance(src, str) and "\n" not in src and len(src) < 4096 and src.endswith((".c", ".h")) \
        and Path(src).is_file()


def build_c_module(sources: "str | os.PathLike | Sequence[str | os.PathLike]", target: str = "wasm32-wasi", *,
                   flags: Iterable[str] = (), include_dirs: Iterable[str | os.PathLike] = (),
                   sjlj: bool = False, extra_inputs: Iterable[str | os.PathLike] = (),
                   cache_dir: str | os.PathLike | None = None, timeout: float = 600) -> bytes:
    """Compile C source(s) (paths or source text) into a module; returns the .wasm bytes.

    target "wasm32-wasi": a WASI reactor with wasi-libc (malloc/free exported).
    target "wasm64-freestanding" (alias "wasm64"): no libc; the source defines malloc/free/handle.
    `flags` are appended (later flags win, e.g. another -Wl,-z,stack-size). `sjlj` enables
    setjmp/longjmp through wasm exceptions and adds the `__c_longjmp` tag. Headers in each source's
    directory, in `include_dirs` and files/dirs in `extra_inputs` are part of the cache key.
    """
    if target == "wasm64":
        target = "wasm64-freestanding"
    if target not in TARGETS:
        raise BuildError(f"unknown target {target!r}; use one of {TARGETS}")
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    flags, include_dirs = list(flags), [Path(d).resolve() for d in include_dirs]
    auto_dirs: list[Path] = []               # each source's own directory: its headers, not recursive
    texts: list[tuple[str, bytes]] = []      # (file name, content)
    key = hashlib.sha256()
    for i, src in enumerate(sources):
        if _is_path(src):
            p = Path(src)
            texts.append((p.name, p.read_bytes()))
            if p.parent.resolve() not in include_dirs + auto_dirs:
                auto_dirs.append(p.parent.resolve())
        else:
            texts.append((f"src{i}.c", str(src).encode()))
    if sjlj:
        texts.append(("aonet_c_longjmp_tag.c", SJLJ_TAG_SOURCE.encode()))
    base = WASI_FLAGS if target == "wasm32-wasi" else WASM64_FLAGS
    args = ["-target", target, *base, *(SJLJ_FLAGS if sjlj else ()), *flags]
    key.update(repr((args, _zig_version(), sys.platform)).encode())
    for name, data in texts:
        key.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    for d in include_dirs:
        _hash_tree(key, d, "**/*.h")
    for d in auto_dirs:
        _hash_tree(key, d, "*.h")
    for d in extra_inputs:
        _hash_tree(key, Path(d), "**/*")
    digest = key.hexdigest()
    out_dir = Path(cache_dir) if cache_dir else cache_root() / "wasm-build"
    out = out_dir / f"{digest}.wasm"
    if out.exists():
        return out.read_bytes()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aonet-build-") as tmp:
        files = []
        for name, data in texts:
            path = Path(tmp) / name
            if path.exists():
                path = Path(tmp) / f"{len(files)}_{name}"
            path.write_bytes(data)
            if name.endswith(".c"):
                files.append(str(path))
        wasm = Path(tmp) / "out.wasm"
        cmd = [sys.executable, "-m", "ziglang", "cc", *args, *(f"-I{d}" for d in [*auto_dirs, *include_dirs]), *files,
               "-o", str(wasm)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BuildError(f"zig cc timed out after {timeout} s") from None
        if proc.returncode != 0 or not wasm.exists():
            raise BuildError(f"zig cc failed ({proc.returncode}):\n{proc.stderr.strip()}")
        data = wasm.read_bytes()
    fd, tmp_out = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp_out, out)
    return data


def _hash_tree(key, path: Path, pattern: str) -> None:
    if path.is_file():
        key.update(str(path.name).encode() + hashlib.sha256(path.read_bytes()).digest())
        return
    if not path.is_dir():
        return
    for p in sorted(path.glob(pattern)):
        if p.is_file():
            key.update(str(p.relative_to(path)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
