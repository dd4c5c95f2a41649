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
  whenever the caller asks for snapshot(). So checkpoints cost about 1/checkpoint_ratio of the
  message time, and a failure at most about checkpoint_ratio + 1 memory copies. The runtime's own
  checkpoints go into a reusable buffer (no fresh pages to fault in: ~8x cheaper for big memories),
  which is what lets the default ratio be 32 with failures still cheaper than before (ratio 16 with a
  fresh bytes copy each time).
This requires that linear memory is the whole state between messages: true for clang/zig reactors,
whose only mutable global (`__stack_pointer`) is back at its initial value after each call.

Host overhead per message (what Python does around the module's own work) is kept small: the env is
encoded once per process (it is the same dict for every message; cached by identity and checked by
equality), the message is encoded by a prebuilt C JSON encoder straight into NUL-terminated bytes
(one copy into memory per buffer, through a memoryview of the linear memory), the five ABI calls go
through prebuilt raw C calls (_fastcall.raw_call), the memory's address is re-read only when its size
changed, the answer is read with one strlen when the memory ends in a NUL, and parsed by the C JSON
scanner directly (json.loads is the fallback and the judge of every error message).
"""
from __future__ import annotations

import copy
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

from ._fastcall import (I32, I64, MemoryAccess, define_host_func, fuel_gauge, memory_base, memory_size, memory_view,
                        raw_call, take_pending_host_exception, val_kinds)
from .base import Limits, LimitError, Result, VMError
from .wasi import MODULE as WASI_MODULE, FileTree, OutOfFuel, ProcExit, WasiHost, unsupported

FORMATS = ("wasm32-wasi-ao1", "wasm64-wasi-ao1")
PAGE = 65536
_libc = ctypes.CDLL(None)
_memchr = _libc.memchr
_memchr.restype = ctypes.c_void_p
_memchr.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
_string_at = ctypes.string_at
# A memoryview straight onto a raw address range (no ctypes array type per size: those are cached forever).
_memory_view_at = ctypes.pythonapi.PyMemoryView_FromMemory
_memory_view_at.restype = ctypes.py_object
_memory_view_at.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
_PyBUF_WRITE = 0x200
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_scan_once = json.JSONDecoder().scan_once      # the C scanner behind json.loads, without its wrappers
_BOM = b"\xef\xbb\xbf"


def make_engine(*, fuel: bool = True, canonical_nan: bool = True) -> wasmtime.Engine:
    """The one engine configuration every aonet CU must share (it decides fuel counts and NaN bits).

    AO's emscripten modules meter themselves (`metering.usegas`) and must keep V8's NaN bits, so their
    runtime asks for `fuel=False, canonical_nan=False`; everything else is the same."""
    cfg = wasmtime.Config()
    cfg.consume_fuel = fuel
    cfg.cranelift_nan_canonicalization = canonical_nan
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
    """The ABI's compact JSON (docs/abi.md): what `handle` receives, without the NUL."""
    return _encoder.encode(obj).encode("utf-8")


def _c_encoder():
    """A prebuilt C encoder with exactly _encoder's settings: `"".join(enc(obj, 0)) == _encoder.encode(obj)`.

    JSONEncoder.encode builds one of these per call. Its circular-reference `markers` dict may keep
    entries after a failed encode, so the owner replaces the encoder after any exception."""
    e = _encoder
    return json.encoder.c_make_encoder({}, e.default, json.encoder.encode_basestring, None, e.key_separator,
                                       e.item_separator, e.sort_keys, e.skipkeys, e.allow_nan)


_ENCODE_ERRORS = (TypeError, ValueError, RecursionError)


def _decode(text: bytes) -> Any:
    """json.loads(text), faster for the usual answer (UTF-8, starts with its value, no trailing space).

    Any case the fast path does not take (a BOM, surrounding whitespace, an error) goes to json.loads
    itself, so results and error messages are json.loads's."""
    if not text.startswith(_BOM):
        try:
            s = text.decode("utf-8", "surrogatepass")       # what json.loads does with bytes
            obj, end = _scan_once(s, 0)
            if end == len(s):
                return obj
        except (ValueError, StopIteration, RecursionError):
            pass
    return json.loads(text)


def _list_of_dicts(v: Any) -> bool:
    """For json.loads output, where list and dict are never subclasses."""
    if type(v) is not list:
        return False
    for x in v:
        if type(x) is not dict:
            return False
    return True


def _timestamp_ms(msg: Mapping) -> int:
    if isinstance(msg, dict):
        ts = msg.get("Timestamp")
    else:
        ts = msg.get("Timestamp") if isinstance(msg, Mapping) else None
    try:
        return max(0, int(ts)) if ts is not None and not isinstance(ts, bool) else 0
    except (TypeError, ValueError):
        return 0


# _run's outcome: (ok, result, trapped) — a plain tuple, built once per message
_Outcome = tuple[bool, Result, bool]


class WasmRuntime:
    """Serves `wasm32-wasi-ao1` / `wasm64-wasi-ao1` modules (aonet's JSON ABI).

    `files`, `environ` and `args` are what every instance's WASI sees unless `instantiate` overrides
    them (e.g. the CPython runtime passes its stdlib and PYTHONHASHSEED=0).
    """
    formats = FORMATS

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, files: Mapping[str, bytes] | FileTree | None = None,
                 environ: Iterable[str] = (), args: Iterable[str] = (), engine: wasmtime.Engine | None = None,
                 checkpoint_ratio: float = 32.0, max_cached_modules: int = 64):
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
                 image: bytes | None = None, checkpoint_ratio: float = 32.0):
        self.engine = engine
        self.compiled = compiled
        self.limits = limits
        self.host = host
        self.checkpoint_ratio = checkpoint_ratio
        self.stdout = b""                      # what the last message wrote to fd 1/2 (debugging only)
        self.stats = {"messages": 0, "failures": 0, "checkpoints": 0, "replayed": 0, "incarnations": 0}
        self._broken: str | None = None
        self._view = MemoryAccess()
        self._mem_base = 0                     # the memory's address, valid while its size is _mem_len
        self._mem_len = -1
        self._mem_mv: memoryview | None = None  # bytes view of the memory, valid like _mem_base
        self._buf: bytearray | None = None     # reusable checkpoint buffer
        self._enc = _c_encoder()
        self._env_key: tuple[Any, Any, bytes] | None = None   # (env object, a deep copy, its encoding + NUL)
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
            mbz = ("".join(self._enc(msg, 0)) + "\0").encode("utf-8")
            key = self._env_key
            if key is not None and key[0] is env and key[1] == env:
                ebz = key[2]
            else:
                ebz = self._encode_env(env)
        except _ENCODE_ERRORS as exc:
            self._enc = _c_encoder()               # its circular-check markers may be stale now
            return Result(error=f"message or env is not JSON-serializable: {exc}")
        ts = msg.get("Timestamp") if type(msg) is dict else None
        ts = ts if type(ts) is int and ts >= 0 else _timestamp_ms(msg)
        t0 = time.perf_counter()
        ok, result, trapped = self._run(mbz, ebz, ts)
        self.stats["messages"] += 1
        if ok:
            self._log.append((mbz, ebz, ts))
            self._log_bytes += len(mbz) + len(ebz)
            self._log_cost += time.perf_counter() - t0
            if (self._log_cost > self.checkpoint_ratio * self._snap_cost or len(self._log) >= self.max_log
                    or self._log_bytes >= self.max_log_bytes):
                self._checkpoint()
            return result
        self.stats["failures"] += 1
        self._rollback(fresh=trapped)
        return result

    def snapshot(self) -> bytes:
        """The whole linear memory (its length is part of the state). Also becomes the checkpoint."""
        if self._broken:
            raise VMError(f"instance unusable: {self._broken}")
        if self._log:                          # else memory is byte-identical to the checkpoint
            self._checkpoint(keep=True)
        elif type(self._base) is not bytes:    # the checkpoint is in the reusable buffer: hand out bytes
            self._base, self._buf = bytes(self._base), None
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
        self._buf = None
        self._broken = None

    # -- extras ---------------------------------------------------------------------------------
    def memory_hash(self) -> str:
        return memory_hash(self._read_all())

    def memory_size(self) -> int:
        return self._mem_size()

    # -- internals -------------------------------------------------------------------------------
    def _encode_env(self, env: Any) -> bytes:
        """The env's bytes (+ NUL), remembered: a process's env is the same object for every message.

        The cache hit needs the same object *and* equal content (a cheap deep compare against a copy),
        so mutating the dict between messages is still seen."""
        ebz = ("".join(self._enc(env, 0)) + "\0").encode("utf-8")
        try:
            self._env_key = (env, copy.deepcopy(env), ebz)
        except Exception:                      # noqa: BLE001 - an uncopyable env is just not cached
            self._env_key = None
        return ebz

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
        self._mem_len, self._mem_mv = -1, None
        self._set_fuel, self._get_fuel = fuel_gauge(self._ctx)
        self.host.memref = self._memref
        self._malloc = raw_call(store, ex["malloc"], (p,), (p,))
        self._free = raw_call(store, ex["free"], (p,), ())
        self._handle = raw_call(store, ex["handle"], (p, p), (p,))
        self._init = raw_call(store, ex["_initialize"], (), ()) if self.compiled.has_initialize else None
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

    def _mem_now(self) -> tuple[int, int]:
        """(address, size) of the memory; the address is re-read only when the size changed.

        A linear memory moves only when it grows (and a new incarnation resets _mem_len), so an
        unchanged size means an unchanged address, and _mem_mv (a view of exactly that range) is valid."""
        size = memory_size(self._ctx, self._memref)
        if size != self._mem_len:
            self._mem_base = memory_base(self._ctx, self._memref)
            self._mem_mv = _memory_view_at(self._mem_base, size, _PyBUF_WRITE)
            self._mem_len = size
        return self._mem_base, size

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
        _, size = self._mem_now()
        if size != len(image):
            raise LimitError(f"cannot grow memory to {len(image)} bytes")
        self._mem_mv[:] = image

    def _checkpoint(self, keep: bool = False) -> None:
        """Take the memory as the new checkpoint and empty the log.

        keep=False (the runtime's own checkpoints): copied into a reusable buffer, so after the first
        time the copy touches no fresh pages (for a 14 MiB memory ~1 ms instead of ~8 ms); its cost sets
        how often these happen. keep=True (snapshot()): immutable bytes that the caller may keep."""
        t0 = time.perf_counter()
        base, size = self._mem_now()
        if keep:
            self._base, self._buf = _string_at(base, size), None
        else:
            buf = self._buf
            fresh = buf is None or len(buf) != size
            if fresh:
                self._buf = buf = bytearray(size)
            memoryview(buf)[:] = self._mem_mv             # one memcpy (buf[:] = ... copies twice)
            self._base = buf
            if not fresh:    # a fresh buffer's first copy pays its page faults once: not the usual cost
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
            for mbz, ebz, ts in log:
                ok, result, _ = self._run(mbz, ebz, ts)
                if not ok:
                    raise VMError(f"replay diverged (nondeterministic module or host?): {result.error}")
            self.stats["replayed"] += len(log)
            if log:
                self._checkpoint()
        except VMError as exc:
            self._broken = str(exc)
            raise

    def _run(self, mbz: bytes, ebz: bytes, ts: int) -> _Outcome:
        """malloc, malloc, write, handle, read, free, free — the fixed ABI sequence.

        `mbz` and `ebz` are the message and env JSON, each with its NUL terminator (written in one go)."""
        host, limit = self.host, self.limits.compute
        host.begin(ts, mbz, ebz, terminated=True)
        self._set_fuel(limit)
        text = None
        lm, le = len(mbz), len(ebz)
        try:
            pm = self._malloc(lm)
            pe = self._malloc(le)
            if not pm or not pe:
                return self._fail("malloc returned NULL for the message (out of memory)", limit)
            base, size = self._mem_now()
            if pm + lm > size or pe + le > size:
                return self._fail("malloc returned a pointer outside memory", limit)
            mv = self._mem_mv
            mv[pm:pm + lm] = mbz
            mv[pe:pe + le] = ebz
            pr = self._handle(pm, pe)
            base, size = self._mem_now()
            if 0 < pr < size:
                mv = self._mem_mv
                if mv[size - 1] == 0:          # a NUL at the very end: strlen cannot run past memory
                    text = _string_at(base + pr)
                else:
                    end = _memchr(base + pr, 0, size - pr)
                    if end:
                        text = mv[pr:end - base].tobytes()
            self._free(pe)
            self._free(pm)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            ok, result, _ = self._fail(self._describe(exc), limit)
            return ok, result, True
        finally:
            self.stdout = bytes(host.stdout) if host.stdout else b""
        gas = limit - self._get_fuel()
        if text is None:
            return False, Result(error="handle returned NULL or a pointer to no NUL-terminated string",
                                 gas_used=gas), False
        try:
            obj = _decode(text)
        except (ValueError, RecursionError) as exc:
            return False, Result(error=f"module returned invalid JSON: {exc}", gas_used=gas), False
        if type(obj) is not dict:
            return False, Result(error="module returned JSON that is not an object", gas_used=gas), False
        get = obj.get
        out_msgs, spawns, assigns = get("Messages"), get("Spawns"), get("Assignments")
        if not ((out_msgs is None or _list_of_dicts(out_msgs)) and (spawns is None or _list_of_dicts(spawns))
                and (assigns is None or _list_of_dicts(assigns))):
            key = next(k for k in ("Messages", "Spawns", "Assignments")
                       if get(k) is not None and not _list_of_dicts(get(k)))
            return False, Result(output=get("Output", ""), gas_used=gas,
                                 error=f"module result field {key!r} must be a list of objects"), False
        error = get("Error")
        if error is not None:
            # The state rolls back, so the outbox is dropped with it: only Output and Error remain.
            return False, Result(output=get("Output", ""), error=error, gas_used=gas), False
        # Result.from_json, without copying the lists json just made
        return True, Result(output=get("Output", ""), messages=out_msgs or [], spawns=spawns or [],
                            assignments=assigns or [], gas_used=gas), False

    def _fail(self, error: str, limit: int) -> _Outcome:
        try:
            gas = limit - self._get_fuel()
        except wasmtime.WasmtimeError:
            gas = limit
        return False, Result(error=error, gas_used=gas), False

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
