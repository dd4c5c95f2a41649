"""CPython 3.11 as an aonet process runtime (`Module-Format: wasm32-wasi-ao1`).

The module is an ordinary aonet ABI module (docs/abi.md): CPython's WASI build plus a small C entry
point and a frozen stdlib subset and the `ao` process package (ao/), built once into a cache by
build.py. Processes are written in Python against `ao` (docs/python-processes.md).

    from aonet.vm.python import PythonRuntime, python_module
    rt = PythonRuntime()
    inst = rt.instantiate()                      # the built module, default limits
    inst.handle(process_msg, env)                # boots; Data = the process's Python source
"""
from __future__ import annotations

import functools
import os

from ..base import Limits, VMError
from .build import BuildError, SDIST_SHA256, build_key, cache_root, module_path

MODULE_FORMAT = "wasm32-wasi-ao1"
DEFAULT_MEMORY_LIMIT = "1-gb"
DEFAULT_COMPUTE_LIMIT = "9000000000000"


@functools.lru_cache(maxsize=4)
def _module_bytes(key: str) -> bytes:
    return module_path().read_bytes()


def python_module() -> bytes:
    """The CPython process module's bytes (built and cached at first use)."""
    return _module_bytes(build_key())


def module_tags(name: str = "aonet-python") -> list[dict[str, str]]:
    """The tags to publish the module with (AO's Module tags, PROTOCOL.md §2)."""
    return [{"name": n, "value": v} for n, v in (
        ("Data-Protocol", "ao"), ("Variant", "ao.TN.1"), ("Type", "Module"), ("Module-Format", MODULE_FORMAT),
        ("Input-Encoding", "JSON-1"), ("Output-Encoding", "JSON-1"), ("Content-Type", "application/wasm"),
        ("Memory-Limit", DEFAULT_MEMORY_LIMIT), ("Compute-Limit", DEFAULT_COMPUTE_LIMIT), ("Name", name),
        ("Runtime", "CPython-3.11"))]


class PythonRuntime:
    """Runs Python processes: a WasmRuntime fed the CPython module (any wasm32-wasi-ao1 module works too)."""
    formats = (MODULE_FORMAT,)

    def __init__(self, cache_dir: str | os.PathLike | None = None, wasm=None):
        if wasm is None:
            from ..wasm import WasmRuntime
            wasm = WasmRuntime(cache_dir if cache_dir is not None else cache_root() / "wasmtime")
        self.wasm = wasm

    def instantiate(self, module: bytes | None = None, limits: Limits = Limits(), **kw):
        """A new instance of `module` (default: python_module()); see WasmRuntime.instantiate."""
        return self.wasm.instantiate(python_module() if module is None else module, limits, **kw)


__all__ = ["BuildError", "MODULE_FORMAT", "PythonRuntime", "SDIST_SHA256", "module_tags", "python_module", "VMError"]
