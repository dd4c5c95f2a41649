"""Publish a wasm file as an AO Module: build the signed Module item and upload it to a gateway.

`aonet module publish file.wasm --format ...` calls `publish_module`. The format is checked against
what the module actually is (so a CU can later spawn it), guessed from its imports when not given.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

from ..protocol import build_module

WASI_FORMATS = ("wasm32-wasi-ao1", "wasm64-wasi-ao1")
EMSCRIPTEN_FORMATS = ("wasm32-unknown-emscripten2",)          # what aonet runs (vm/emscripten.py)
AO_FORMATS = ("wasm32-unknown-emscripten", "wasm32-unknown-emscripten2", "wasm32-unknown-emscripten3",
              "wasm32-unknown-emscripten4", "wasm64-unknown-emscripten-draft_2024_02_15",
              "wasm32-unknown-emscripten-metering", "wasm64-unknown-emscripten-draft_2024_10_16-metering")
KNOWN_FORMATS = WASI_FORMATS + tuple(f for f in AO_FORMATS if f not in WASI_FORMATS)


class PublishError(Exception):
    """The module cannot be published (unreadable, unknown or mismatching format, upload refused)."""


def _imports_exports(wasm: bytes):
    import wasmtime
    try:
        module = wasmtime.Module(wasmtime.Engine(_config()), wasm)
    except wasmtime.WasmtimeError as exc:
        raise PublishError(f"not a valid wasm module: {str(exc).strip().splitlines()[0]}") from None
    return module


def _config():
    import wasmtime
    cfg = wasmtime.Config()
    cfg.wasm_memory64 = True
    cfg.wasm_exceptions = True
    return cfg


def detect_format(wasm: bytes | bytearray | memoryview) -> str:
    """The Module-Format a module's imports and exports say it is (cached: reading them compiles it)."""
    return _detect_format(bytes(wasm))


@functools.lru_cache(maxsize=8)
def _detect_format(wasm: bytes) -> str:
    import wasmtime
    module = _imports_exports(wasm)
    exports = {e.name: e.type for e in module.exports}
    mem = exports.get("memory")
    is64 = isinstance(mem, wasmtime.MemoryType) and mem.is_64
    imports = {(i.module, i.name) for i in module.imports}
    if all(m == "wasi_snapshot_preview1" for m, _ in imports) and "malloc" in exports and "handle" in exports:
        return WASI_FORMATS[1] if is64 else WASI_FORMATS[0]
    if "handle" in exports and any(m == "env" for m, _ in imports):
        asyncify = any(n.startswith("asyncify_") for n in exports)
        # the newer toolchain leaves metering to the loader: no metering.usegas import means a *-metering format
        metered = ("metering", "usegas") in imports
        if is64:
            return "wasm64-unknown-emscripten-draft_2024_02_15" if metered else \
                "wasm64-unknown-emscripten-draft_2024_10_16-metering"
        if asyncify:
            return "wasm32-unknown-emscripten4" if metered else "wasm32-unknown-emscripten-metering"
        names = {n for m, n in imports if m == "env"}
        if names & {"emscripten_date_now", "emscripten_memcpy_js"}:   # the emscripten3 glue's import names
            return "wasm32-unknown-emscripten3"
        if len(exports) > 5 and "stackAlloc" in exports:
            return "wasm32-unknown-emscripten2"
        return "wasm32-unknown-emscripten"
    raise PublishError("cannot tell the module's format from its imports and exports; pass --format")


def build_module_item(wallet, wasm: bytes, *, module_format: str | None = None, memory_limit: str = "1-gb",
                      compute_limit: int = 9_000_000_000_000, tags: Sequence = ()):
    """The signed Module data item for `wasm` (a DataItem); checks the format fits the binary."""
    if not wasm.startswith(b"\0asm"):
        raise PublishError("not a wasm binary (no \\0asm magic)")
    detected = detect_format(wasm)
    fmt = module_format or detected
    if fmt not in KNOWN_FORMATS:
        raise PublishError(f"unknown Module-Format {fmt!r}; known: {', '.join(KNOWN_FORMATS)}")
    if (fmt in WASI_FORMATS) != (detected in WASI_FORMATS) or fmt.startswith("wasm64") != detected.startswith("wasm64"):
        raise PublishError(f"--format {fmt} does not fit this module, which looks like {detected}")
    return build_module(wallet, wasm, module_format=fmt, tags=tags, memory_limit=memory_limit,
                        compute_limit=compute_limit)


def publish_module(wasm: bytes | str | os.PathLike, *, gateway: str, wallet, module_format: str | None = None,
                   memory_limit: str = "1-gb", compute_limit: int = 9_000_000_000_000, tags: Sequence = (),
                   timeout: float = 120.0) -> str:
    """Build the Module item and POST it to `{gateway}/tx/arweave`; returns the module id."""
    import httpx
    if not isinstance(wasm, (bytes, bytearray)):
        try:
            wasm = Path(wasm).read_bytes()
        except OSError as exc:
            raise PublishError(f"cannot read {wasm}: {exc.strerror}") from None
    item = build_module_item(wallet, bytes(wasm), module_format=module_format, memory_limit=memory_limit,
                             compute_limit=compute_limit, tags=tags)
    url = gateway.rstrip("/") + "/tx/arweave"
    try:
        r = httpx.post(url, content=item.to_bytes(), headers={"Content-Type": "application/octet-stream"},
                       timeout=timeout)
    except httpx.HTTPError as exc:
        raise PublishError(f"upload to {url} failed: {exc}") from None
    if r.status_code >= 300:
        raise PublishError(f"gateway refused the module ({r.status_code}): {r.text[:300]}")
    return item.id
