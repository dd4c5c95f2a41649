"""The WASM runtime for aonet's JSON ABI (`wasm32-wasi-ao1`, `wasm64-wasi-ao1`; see docs/abi.md).

A module is compiled once per engine (cached by the sha256 of its bytes, in memory and optionally on
disk), instantiated into its own wasmtime Store with fuel metering and a memory limit, and fed one
JSON message at a time.

Theory of operation — rolling back a failed message cheaply:
  Copying the whole linear memory before every message would cost more than most messages (a 2 MiB
  module pays ~100 µs, CPython's 27 MiB ~5 ms). Instead an instance keeps a *checkpoint* (a memory
  image known to be good) and the *log* of messages that succeeded since. Success costs nothing but
  appending to the log. A failure (trap, out of fuel, proc_exit, a result with Error) rebuilds the
  state: the checkpoint is written back (into a fresh wasmtime instance after a trap, because its
  globals may be dirty, or when memory grew, because memory cannot shrink) and the log is replayed.
  Replaying is exact because a message's execution depends only on the message and the memory.
  A new checkpoint is taken when replaying the log would cost more than `checkpoint_ratio` times a
  memory copy (measured), when the log grows past its caps, after every rollback, and for free
  whenever the caller asks for snapshot().
This requires that linear memory is the whole state between messages: true for clang/zig reactors,
whose only mutable global (`__stack_pointer`) is back at its initial value after each call.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import wasmtime

from ._fastcall import I32, I64, MemoryAccess, RawFunc, define_host_func, memory_view, take_pending_host_exception, val_kinds
from .base import Limits, LimitError, Result, VMError
from .wasi import MODULE as WASI_MODULE, FileTree, OutOfFuel, ProcExit, WasiHost, unsupported

FORMATS = ("wasm32-wasi-ao1", "wasm64-wasi-ao1")
PAGE = 65536
_libc = ctypes.CDLL(None)
_memchr = _libc.memchr
_memchr.restype = ctypes.c_void_p
_memchr.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def make_engine() -> wasmtime.Engine:
    """The one engine configuration every aonet CU must share (it decides fuel counts and NaN bits)."""
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    cfg.cranelift_nan_canonicalization = True
    cfg.wasm_threads = False
    cfg.wasm_relaxed_simd = True
    cfg.wasm_relaxed_simd_deterministic = True
    cfg.wasm_memory64 = True
    cfg.wasm_exceptions = True
    cfg.wasm_reference_types = True
    cfg.wasm_bulk_memory = True
    return wasmtime.Engine(cfg)


# Part of the disk-cache key: a serialized module is only valid for the same wasmtime and config.
ENGINE_TAG = hashlib.sha256(b"wasmtime-50.0.1;fuel;nan-canon;no-threads;relaxed-det;mem64;exn").hexdigest()[:16]


def memory_hash(image: bytes) -> str:
    """sha256 (hex) of a memory image: the fingerprint CUs compare to check determinism."""
    return hashlib.sha256(image).hexdigest()


@dataclass(frozen=True)
class CompiledModule:
    """A compiled module plus what the ABI needs to know about it (checked once, at compile time)."""
    sha256: str
    module: wasmtime.Module
    ptr64: bool
    min_pages: int
    has_initialize: bool
    wasi_imports: tuple[tuple[str, wasmtime.FuncType], ...]

    @property
    def format(self) -> str:
        return FORMATS[1] if self.ptr64 else FORMATS[0]


def _abi_check(sha: str, module: wasmtime.Module) -> CompiledModule:
    exports = {e.name: e.type for e in module.exports}
    mem = exports.get("memory")
    if mem is None:
        raise VMError("module does not export 'memory' (required by the aonet ABI, docs/abi.md)")
    if not isinstance(mem, wasmtime.MemoryType):
        raise VMError("the module's 'memory' export is not a memory")
    if mem.is_shared:
        raise VMError("shared memories are not supported (no threads in aonet processes)")
    ptr64 = mem.is_64
    p = I64 if ptr64 else I32
    want = {"malloc": ((p,), (p,)), "free": ((p,), ()), "handle": ((p, p), (p,))}
    for name, (params, results) in want.items():
        ty = exports.get(name)
        if ty is None:
            raise VMError(f"module does not export {name!r} (required by the aonet ABI, docs/abi.md)")
        if not isinstance(ty, wasmtime.FuncType) or (val_kinds(ty.params), val_kinds(ty.results)) != (params, results):
            got = (val_kinds(ty.params), val_kinds(ty.results)) if isinstance(ty, wasmtime.FuncType) else "not a function"
            raise VMError(f"export {name!r} must have signature {params} -> {results} for a "
                          f"{'wasm64' if ptr64 else 'wasm32'} module, got {got}")
    init = exports.get("_initialize")
    if init is not None and (not isinstance(init, wasmtime.FuncType) or init.params or init.results):
        raise VMError("export '_initialize' must have signature () -> ()")
    wasi = []
    for imp in module.imports:
        if imp.module != WASI_MODULE or not isinstance(imp.type, wasmtime.FuncType):
            raise VMError(f"unsupported import {imp.module}.{imp.name}: aonet modules may import only "
                          f"{WASI_MODULE} functions")
        kinds = val_kinds(imp.type.params) + val_kinds(imp.type.results)
        if any(k not in (I32, I64) for k in kinds) or len(imp.type.results) > 1:
            raise VMError(f"import {imp.module}.{imp.name} has an unsupported signature")
        wasi.append((imp.name, imp.type))
    return CompiledModule(sha, module, ptr64, mem.limits.min, init is not None, tuple(wasi))


class ModuleCache:
    """Compiled modules keyed by the sha256 of their bytes: an LRU in memory, serialized files on disk.

    Compiling a 20 MB module takes seconds; deserializing it takes milliseconds.
    """

    def __init__(self, engine: wasmtime.Engine, cache_dir: str | os.PathLike | None = None, max_entries: int = 64):
        self.engine = engine
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_entries = max_entries
        self._mem: OrderedDict[str, CompiledModule] = OrderedDict()

    def get(self, module: bytes) -> CompiledModule:
        if not isinstance(module, (bytes, bytearray, memoryview)):
            raise VMError(f"module must be bytes, not {type(module).__name__}")
        module = bytes(module)
        sha = hashlib.sha256(module).hexdigest()
        hit = self._mem.get(sha)
        if hit is not None:
            self._mem.move_to_end(sha)
            return hit
        compiled = _abi_check(sha, self._load(sha, module))
        self._mem[sha] = compiled
        while len(self._mem) > self.max_entries:
            self._mem.popitem(last=False)
        return compiled

    def _load(self, sha: str, module: bytes) -> wasmtime.Module:
        path = self.cache_dir / f"{sha}.{ENGINE_TAG}.cwasm" if self.cache_dir else None
        if path is not None and path.exists():
            try:
                # deserialize (a copy), not deserialize_file: that one mmaps the file, and anything
                # truncating it later would crash the process with SIGBUS.
                return wasmtime.Module.deserialize(self.engine, path.read_bytes())
            except (wasmtime.WasmtimeError, OSError):
                pass                                    # stale or corrupt: compile again
        try:
            if not module.startswith(b"\0asm"):
                try:
                    module = wasmtime.wat2wasm(module.decode("utf-8"))
                except (UnicodeDecodeError, wasmtime.WasmtimeError):
                    raise VMError("module is neither a wasm binary (no \\0asm magic) nor WAT text") from None
            compiled = wasmtime.Module(self.engine, module)
        except wasmtime.WasmtimeError as exc:
            raise VMError(f"invalid wasm module: {str(exc).strip().splitlines()[0]}") from None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(compiled.serialize())
            os.replace(tmp, path)
        return compiled


def _encode(obj: Any) -> bytes:
    return _encoder.encode(obj).encode("utf-8")


def _timestamp_ms(msg: Mapping) -> int:
    ts = msg.get("Timestamp") if isinstance(msg, Mapping) else None
    try:
        return max(0, int(ts)) if ts is not None and not isinstance(ts, bool) else 0
    except (TypeError, ValueError):
        return 0


@dataclass
class _Outcome:
    ok: bool
    result: Result
    trapped: bool = False


_LISTS = ("Messages", "Spawns", "Assignments")


class WasmRuntime:
    """Serves `wasm32-wasi-ao1` / `wasm64-wasi-ao1` modules (aonet's JSON ABI).

    `files`, `environ` and `args` are what every instance's WASI sees unless `instantiate` overrides
    them (e.g. the CPython runtime passes its stdlib and PYTHONHASHSEED=0).
    """
    formats = FORMATS

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, files: Mapping[str, bytes] | FileTree | None = None,
                 environ: Iterable[str] = (), args: Iterable[str] = (), engine: wasmtime.Engine | None = None,
                 checkpoint_ratio: float = 16.0, max_cached_modules: int = 64):
        self.engine = engine or make_engine()
        self.modules = ModuleCache(self.engine, cache_dir, max_cached_modules)
        self.files = _tree(files)
        self.environ = tuple(environ)
        self.args = tuple(args)
        self.checkpoint_ratio = checkpoint_ratio

    def compile(self, module: bytes) -> CompiledModule:
        """Compile (or fetch from the cache) and check the ABI; raises VMError."""
        return self.modules.get(module)

    def instantiate(self, module: bytes, limits: Limits = Limits(), *, image: bytes | None = None,
                    format: str | None = None, files: Mapping[str, bytes] | FileTree | None = None,
                    environ: Iterable[str] | None = None, args: Iterable[str] | None = None) -> "WasmInstance":
        """A new instance. With `image` (from snapshot()) the state is restored and `_initialize` is not
        run; without it `_initialize` runs once. `format`, if given, must match the module's memory."""
        compiled = self.compile(module)
        if format is not None and format != compiled.format:
            if format not in FORMATS:
                raise VMError(f"unknown module format {format!r}; this runtime serves {', '.join(FORMATS)}")
            raise VMError(f"module format says {format} but the module's memory is "
                          f"{'64' if compiled.ptr64 else '32'}-bit")
        host = WasiHost(_tree(files) if files is not None else self.files,
                        self.environ if environ is None else environ,
                        self.args if args is None else args, ptr64=compiled.ptr64)
        return WasmInstance(self.engine, compiled, limits, host, image=image, checkpoint_ratio=self.checkpoint_ratio)


def _tree(files) -> FileTree:
    if isinstance(files, FileTree):
        return files
    try:
        return FileTree(files)
    except (TypeError, ValueError) as exc:
        raise VMError(f"bad file tree: {exc}") from None


class WasmInstance:
    """One process's state in a wasmtime store; handles one message at a time (not thread safe)."""

    max_log = 10_000                 # messages kept for replay before a checkpoint is forced
    max_log_bytes = 64 << 20         # bytes of messages kept for replay before a checkpoint is forced

    def __init__(self, engine: wasmtime.Engine, compiled: CompiledModule, limits: Limits, host: WasiHost, *,
                 image: bytes | None = None, checkpoint_ratio: float = 16.0):
        self.engine = engine
        self.compiled = compiled
        self.limits = limits
        self.host = host
        self.checkpoint_ratio = checkpoint_ratio
        self.stdout = b""                      # what the last message wrote to fd 1/2 (debugging only)
        self.stats = {"messages": 0, "failures": 0, "checkpoints": 0, "replayed": 0, "incarnations": 0}
        self._broken: str | None = None
        self._view = MemoryAccess()
        self._snap_cost = 20e-6                # seconds per checkpoint copy; measured at each one
        if compiled.min_pages * PAGE > limits.memory:
            raise LimitError(f"module needs {compiled.min_pages * PAGE} bytes of memory at start, over the "
                             f"Memory-Limit of {limits.memory}")
        self._linker = wasmtime.Linker(engine)
        self._callbacks: list = []
        bound = host.bind()
        for name, ty in compiled.wasi_imports:
            impl = bound.get(name) or _unsupported(name, ty)
            define_host_func(self._linker, WASI_MODULE, name, ty, impl, self._host_error, self._callbacks)
        try:
            self._pre = self._linker.instantiate_pre(compiled.module)
        except wasmtime.WasmtimeError as exc:
            raise VMError(f"cannot link module: {exc}") from None
        self._incarnate()
        if image is None:
            if compiled.has_initialize:
                self._call_initialize()
            self._base = b""
            self._checkpoint()
        else:
            self.restore(image)

    # -- the Instance interface ---------------------------------------------------------------
    def handle(self, msg: dict, env: dict) -> Result:
        """Evaluate one message; on any failure the state is exactly as before it."""
        if self._broken:
            raise VMError(f"instance unusable: {self._broken}")
        try:
            mb, eb = _encode(msg), _encode(env)
        except (TypeError, ValueError) as exc:
            return Result(error=f"message or env is not JSON-serializable: {exc}")
        ts = _timestamp_ms(msg)
        t0 = time.perf_counter()
        out = self._run(mb, eb, ts)
        self.stats["messages"] += 1
        if out.ok:
            self._log.append((mb, eb, ts))
            self._log_bytes += len(mb) + len(eb)
            self._log_cost += time.perf_counter() - t0
            if (self._log_cost > self.checkpoint_ratio * self._snap_cost or len(self._log) >= self.max_log
                    or self._log_bytes >= self.max_log_bytes):
                self._checkpoint()
            return out.result
        self.stats["failures"] += 1
        self._rollback(fresh=out.trapped)
        return out.result

    def snapshot(self) -> bytes:
        """The whole linear memory (its length is part of the state). Also becomes the checkpoint."""
        if self._broken:
            raise VMError(f"instance unusable: {self._broken}")
        if self._log:                          # else memory is byte-identical to the checkpoint
            self._checkpoint()
        return self._base

    def restore(self, image: bytes) -> None:
        """Replace the state with `image` (from snapshot()).

        Between messages the instance's globals are always at rest (every trap re-instantiates), so
        an image of the current memory size is written in place; otherwise into a fresh instance."""
        image = bytes(image)
        if len(image) % PAGE or len(image) // PAGE < self.compiled.min_pages:
            raise VMError(f"image of {len(image)} bytes does not fit this module (whole 64 KiB pages, at least "
                          f"{self.compiled.min_pages} of them)")
        if len(image) > self.limits.memory:
            raise LimitError(f"image of {len(image)} bytes is over the Memory-Limit of {self.limits.memory}")
        try:
            if self._broken or self._mem_size() != len(image):
                self._incarnate()
            self._load_image(image)
        except VMError as exc:
            self._broken = f"restore failed: {exc}"
            raise
        self._base, self._log, self._log_bytes, self._log_cost = image, [], 0, 0.0
        self._broken = None

    # -- extras ---------------------------------------------------------------------------------
    def memory_hash(self) -> str:
        return memory_hash(self._read_all())

    def memory_size(self) -> int:
        return self._mem_size()

    # -- internals -------------------------------------------------------------------------------
    def _host_error(self, exc: BaseException) -> None:
        self.host.error = exc

    def _incarnate(self) -> None:
        """A fresh wasmtime store + instance (no _initialize); memory holds the module's data segments."""
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=self.limits.memory)
        store.set_fuel(self.limits.compute)
        try:
            inst = self._pre.instantiate(store)
        except wasmtime.Trap as exc:
            raise VMError(f"module trapped while instantiating: {_first_line(exc)}") from None
        except wasmtime.WasmtimeError as exc:
            raise VMError(f"cannot instantiate module: {_first_line(exc)}") from None
        finally:
            take_pending_host_exception()
        ex = inst.exports(store)
        p = I64 if self.compiled.ptr64 else I32
        self._store, self._instance = store, inst
        self._memory = ex["memory"]
        self._memref = ctypes.byref(self._memory._memory)
        self._ctx = store._context()
        self.host.memref = self._memref
        self._malloc = RawFunc(store, ex["malloc"], (p,), (p,))
        self._free = RawFunc(store, ex["free"], (p,), ())
        self._handle = RawFunc(store, ex["handle"], (p, p), (p,))
        self._init = RawFunc(store, ex["_initialize"], (), ()) if self.compiled.has_initialize else None
        self.stats["incarnations"] += 1

    def _call_initialize(self) -> None:
        self.host.begin(0, b"", b"")
        self._store.set_fuel(self.limits.compute)
        try:
            self._init()
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise VMError(f"_initialize failed: {self._describe(exc)}") from None

    def _mem(self) -> MemoryAccess:
        return memory_view(self._ctx, self._memref, self._view)

    def _mem_size(self) -> int:
        return self._mem().size

    def _read_all(self) -> bytes:
        m = self._mem()
        return ctypes.string_at(m.base, m.size)

    def _load_image(self, image: bytes) -> None:
        have = self._mem_size()
        if have > len(image):
            raise VMError(f"image of {len(image)} bytes is smaller than the fresh instance's memory ({have})")
        if have < len(image):
            try:
                self._memory.grow(self._store, (len(image) - have) // PAGE)
            except wasmtime.WasmtimeError as exc:
                raise LimitError(f"cannot grow memory to {len(image)} bytes: {_first_line(exc)}") from None
        m = self._mem()
        if m.size != len(image):
            raise LimitError(f"cannot grow memory to {len(image)} bytes")
        ctypes.memmove(m.base, image, len(image))

    def _checkpoint(self) -> None:
        t0 = time.perf_counter()
        self._base = self._read_all()
        self._snap_cost = max(time.perf_counter() - t0, 20e-6)   # floor: tiny memories still batch
        self._log, self._log_bytes, self._log_cost = [], 0, 0.0
        self.stats["checkpoints"] += 1

    def _rollback(self, fresh: bool) -> None:
        """Back to the state before the failed message: checkpoint + replay of the log."""
        try:
            if fresh or self._mem_size() != len(self._base):   # dirty globals, or memory cannot shrink
                self._incarnate()
            self._load_image(self._base)
            log = self._log
            for mb, eb, ts in log:
                out = self._run(mb, eb, ts)
                if not out.ok:
                    raise VMError(f"replay diverged (nondeterministic module or host?): {out.result.error}")
            self.stats["replayed"] += len(log)
            if log:
                self._checkpoint()
        except VMError as exc:
            self._broken = str(exc)
            raise

    def _run(self, mb: bytes, eb: bytes, ts: int) -> _Outcome:
        """malloc, malloc, write, handle, read, free, free — the fixed ABI sequence."""
        host, limit = self.host, self.limits.compute
        host.begin(ts, mb, eb)
        store = self._store
        store.set_fuel(limit)
        text = None
        try:
            pm = self._malloc(len(mb) + 1)
            pe = self._malloc(len(eb) + 1)
            if not pm or not pe:
                return self._fail("malloc returned NULL for the message (out of memory)", store, limit)
            m = self._mem()
            if pm + len(mb) + 1 > m.size or pe + len(eb) + 1 > m.size:
                return self._fail("malloc returned a pointer outside memory", store, limit)
            ctypes.memmove(m.base + pm, mb, len(mb))
            ctypes.memset(m.base + pm + len(mb), 0, 1)
            ctypes.memmove(m.base + pe, eb, len(eb))
            ctypes.memset(m.base + pe + len(eb), 0, 1)
            pr = self._handle(pm, pe)
            m = self._mem()
            if 0 < pr < m.size:
                end = _memchr(m.base + pr, 0, m.size - pr)
                if end:
                    text = ctypes.string_at(m.base + pr, end - m.base - pr)
            self._free(pe)
            self._free(pm)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            out = self._fail(self._describe(exc), store, limit)
            out.trapped = True
            return out
        finally:
            self.stdout = bytes(host.stdout)
        gas = limit - store.get_fuel()
        if text is None:
            return _Outcome(False, Result(error="handle returned NULL or a pointer to no NUL-terminated string",
                                          gas_used=gas))
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return _Outcome(False, Result(error=f"module returned invalid JSON: {exc}", gas_used=gas))
        if not isinstance(obj, dict):
            return _Outcome(False, Result(error="module returned JSON that is not an object", gas_used=gas))
        for key in _LISTS:
            v = obj.get(key)
            if v is not None and (not isinstance(v, list) or not all(isinstance(x, dict) for x in v)):
                return _Outcome(False, Result(output=obj.get("Output", ""), gas_used=gas,
                                              error=f"module result field {key!r} must be a list of objects"))
        if obj.get("Error") is not None:
            # The state rolls back, so the outbox is dropped with it: only Output and Error remain.
            return _Outcome(False, Result(output=obj.get("Output", ""), error=obj["Error"], gas_used=gas))
        return _Outcome(True, Result.from_json(obj, gas_used=gas))

    def _fail(self, error: str, store: wasmtime.Store, limit: int) -> _Outcome:
        try:
            gas = limit - store.get_fuel()
        except wasmtime.WasmtimeError:
            gas = limit
        return _Outcome(False, Result(error=error, gas_used=gas))

    def _describe(self, exc: BaseException) -> str:
        host_exc, self.host.error = self.host.error, None
        if isinstance(host_exc, ProcExit):
            return f"process called {host_exc.what}({host_exc.code})"
        if isinstance(host_exc, OutOfFuel):
            return f"Compute-Limit exceeded: out of fuel after {self.limits.compute} units (in WASI {host_exc})"
        if host_exc is not None:
            return f"host function failed: {type(host_exc).__name__}: {host_exc}"
        code = getattr(exc, "trap_code", None) if isinstance(exc, wasmtime.Trap) else None
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return f"Compute-Limit exceeded: out of fuel after {self.limits.compute} units"
        text = f"wasm trap: {_trap_reason(exc)}"
        if self._mem_size() + PAGE > self.limits.memory:
            text += f" (memory is at the Memory-Limit of {self.limits.memory} bytes)"
        return text


def _unsupported(name: str, ty: wasmtime.FuncType):
    if val_kinds(ty.results) != (I32,):
        def trap(_caller, _args):
            raise VMError(f"unsupported WASI function {name}")
        return trap
    return unsupported(name)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _trap_reason(exc: BaseException) -> str:
    """The cause of a trap without its backtrace, e.g. "wasm `unreachable` instruction executed"."""
    lines = [ln.strip() for ln in str(getattr(exc, "message", None) or exc).strip().splitlines()]
    if "Caused by:" in lines:
        lines = [ln for ln in lines[lines.index("Caused by:") + 1:] if ln]
    text = lines[0] if lines and lines[0] else type(exc).__name__
    return text.removeprefix("wasm trap: ")
