"""Process runtimes behind one small interface (see base.py and docs/abi.md)."""
from .base import DEFAULT_COMPUTE_LIMIT, DEFAULT_MEMORY_LIMIT, Instance, LimitError, Limits, Result, Runtime, VMError, parse_size

__all__ = ["DEFAULT_COMPUTE_LIMIT", "DEFAULT_MEMORY_LIMIT", "Instance", "LimitError", "Limits", "Result",
           "Runtime", "VMError", "parse_size",
           "WasmRuntime", "WasmInstance", "FileTree", "memory_hash", "build_c_module", "BuildError"]

# Loaded on first use: importing wasmtime costs time that code needing only Limits/Result should not pay.
_LAZY = {"WasmRuntime": ".wasm", "WasmInstance": ".wasm", "memory_hash": ".wasm", "FileTree": ".wasi",
         "build_c_module": ".build", "BuildError": ".build"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
