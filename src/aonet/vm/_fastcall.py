"""Fast calls across the wasmtime boundary, through its C API (raw values, no type checks per call).

Why: `wasmtime.Func.__call__` spends ~15 µs per call converting and checking values; the unchecked C
entry point costs well under 1 µs when called through our own ctypes prototypes (`restype` c_void_p
and every argument a prebuilt ctypes object, so no result object and no conversion is made per call).
A message needs five calls, so this is most of the host's overhead.
This file is the only place that touches wasmtime-py internals (`_bindings`, `_func`); it is pinned
to wasmtime==50.0.1 (pyproject.toml). Types are checked once, when the instance is built.
"""
from __future__ import annotations

import ctypes
from typing import Callable, Sequence

import wasmtime
from wasmtime import Trap, WasmtimeError
from wasmtime import _bindings as _B

ValRaw = _B.wasmtime_val_raw
_TrapPtr = ctypes.POINTER(_B.wasm_trap_t)
_ErrPtr = ctypes.POINTER(_B.wasmtime_error_t)
_caller_context = _B._wasmtime_caller_context
_trap_new = _B._wasmtime_trap_new
_define_unchecked = _B._wasmtime_linker_define_func_unchecked
_CALLBACK = _B.wasmtime_func_unchecked_callback_t
_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_no_finalizer = _FINALIZER(lambda _env: None)


def _raw(name: str, argtypes, restype=ctypes.c_void_p):
    """A private prototype of a C API function (dll[...] makes a new one, so wasmtime-py's are untouched)."""
    fn = _B.dll[name]
    fn.argtypes = argtypes
    fn.restype = restype
    return fn


# argtypes None: every argument is passed as a prebuilt ctypes object (pointer, byref, array, c_size_t).
_call_raw = _raw("wasmtime_func_call_unchecked", None)
_data_raw = _raw("wasmtime_memory_data", None)
_size_raw = _raw("wasmtime_memory_data_size", None, ctypes.c_size_t)
_get_fuel_raw = _raw("wasmtime_context_get_fuel", None)
_set_fuel_raw = _raw("wasmtime_context_set_fuel", None)

I32, I64 = "i32", "i64"
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


def val_kinds(types: Sequence[wasmtime.ValType]) -> tuple[str, ...]:
    return tuple(str(t) for t in types)


def _raise_error(err: int) -> None:
    take_pending_host_exception()
    raise WasmtimeError._from_ptr(ctypes.cast(err, _ErrPtr))


def raw_call(store: wasmtime.Store, func: wasmtime.Func, params: Sequence[str],
             results: Sequence[str]) -> Callable[..., "int | None"]:
    """A function calling `func` with Python ints (unsigned results), specialised for its signature.

    Everything the C call needs is built here once (argument cells, length, trap slot), so a call
    allocates nothing but the result int. Raises wasmtime.Trap / WasmtimeError like Func.__call__.
    """
    if any(k not in (I32, I64) for k in (*params, *results)) or len(results) > 1:
        raise TypeError("only i32/i64 parameters and at most one result are supported")
    ctx = store._context()
    fn = ctypes.byref(func._func)
    n = max(len(params), len(results), 1)
    vals = (ValRaw * n)()
    cells = [vals[i] for i in range(n)]
    n_arg = ctypes.c_size_t(n)
    trap = _TrapPtr()
    trap_ref = ctypes.byref(trap)
    keep = (func, vals)                   # the Func (and so its raw struct) and the buffer stay alive
    kinds = tuple(params)
    res = results[0] if results else None

    def check(err) -> None:
        if err:
            _raise_error(err)
        # a trap: hand its pointer to a Trap object and clear our slot for the next call
        owned = _TrapPtr(trap.contents)
        ctypes.memset(ctypes.addressof(trap), 0, ctypes.sizeof(trap))
        raise Trap._from_ptr(owned)

    c0 = cells[0]
    if kinds == (I32,) and res == I32:            # malloc
        def call(a, _keep=keep):
            c0.i32 = a if a < 0x80000000 else a - 0x100000000
            err = _call_raw(ctx, fn, vals, n_arg, trap_ref)
            if err or trap:
                check(err)
            return c0.i32 & _MASK32
    elif kinds == (I32,) and res is None:         # free
        def call(a, _keep=keep):
            c0.i32 = a if a < 0x80000000 else a - 0x100000000
            err = _call_raw(ctx, fn, vals, n_arg, trap_ref)
            if err or trap:
                check(err)
    elif kinds == (I32, I32) and res == I32:      # handle
        c1 = cells[1]

        def call(a, b, _keep=keep):
            c0.i32 = a if a < 0x80000000 else a - 0x100000000
            c1.i32 = b if b < 0x80000000 else b - 0x100000000
            err = _call_raw(ctx, fn, vals, n_arg, trap_ref)
            if err or trap:
                check(err)
            return c0.i32 & _MASK32
    else:                                         # anything else (wasm64, _initialize, emscripten's)
        plan = tuple((cells[i], k == I32) for i, k in enumerate(kinds))

        def call(*args, _keep=keep):
            if len(args) != len(plan):
                raise TypeError(f"expected {len(plan)} arguments, got {len(args)}")
            for (cell, is32), a in zip(plan, args):
                if is32:
                    cell.i32 = a if a < 0x80000000 else a - 0x100000000
                else:
                    cell.i64 = a if a < 0x8000000000000000 else a - 0x10000000000000000
            err = _call_raw(ctx, fn, vals, n_arg, trap_ref)
            if err or trap:
                check(err)
            if res is None:
                return None
            return (c0.i32 & _MASK32) if res == I32 else (c0.i64 & _MASK64)
    return call


class RawFunc:
    """One exported function of one store, callable with Python ints (unsigned results).

    `call` is the specialised function itself (use it in hot loops: one Python call less).
    """
    __slots__ = ("call",)

    def __init__(self, store: wasmtime.Store, func: wasmtime.Func, params: Sequence[str], results: Sequence[str]):
        self.call = raw_call(store, func, params, results)

    def __call__(self, *args: int) -> int | None:
        return self.call(*args)


def take_pending_host_exception() -> None:
    """wasmtime-py parks exceptions of its own Python callbacks here; we never use those, clear it."""
    from wasmtime import _func
    _func.LAST_EXCEPTION = None


class MemoryAccess:
    """Bounds-checked reads and writes of a linear memory at a raw address (refreshed per use)."""
    __slots__ = ("base", "size")

    def __init__(self) -> None:
        self.base = 0
        self.size = 0


def memory_view(ctx, memref, view: MemoryAccess) -> MemoryAccess:
    """Point `view` at the memory's current data (it can move when the memory grows)."""
    view.base = _data_raw(ctx, memref) or 0
    view.size = _size_raw(ctx, memref)
    return view


def memory_size(ctx, memref) -> int:
    """The memory's current length in bytes (its data moves only when this changes: on growth)."""
    return _size_raw(ctx, memref)


def memory_base(ctx, memref) -> int:
    return _data_raw(ctx, memref) or 0


def caller_context(caller):
    return _caller_context(caller)


def set_fuel(ctx, fuel: int) -> None:
    err = _set_fuel_raw(ctx, ctypes.c_uint64(fuel))
    if err:
        _raise_error(err)


def get_fuel(ctx) -> int:
    fuel = ctypes.c_uint64()
    err = _get_fuel_raw(ctx, ctypes.byref(fuel))
    if err:
        _raise_error(err)
    return fuel.value


def fuel_gauge(ctx) -> tuple[Callable[[int], None], Callable[[], int]]:
    """(set, get) of the fuel of the store behind `ctx`, with their C arguments built once."""
    cell = ctypes.c_uint64()
    ref = ctypes.byref(cell)

    def set_(fuel: int) -> None:
        cell.value = fuel
        err = _set_fuel_raw(ctx, cell)
        if err:
            _raise_error(err)

    def get() -> int:
        err = _get_fuel_raw(ctx, ref)
        if err:
            _raise_error(err)
        return cell.value
    return set_, get


def take_fuel(ctx, amount: int) -> bool:
    """Consume `amount` fuel in the store behind `ctx`; False (and fuel 0) when there is not enough."""
    fuel = ctypes.c_uint64()
    err = _get_fuel_raw(ctx, ctypes.byref(fuel))
    if err:
        _B.wasmtime_error_delete(ctypes.cast(err, _ErrPtr))
        return True                       # fuel metering off: nothing to charge
    left = fuel.value - amount
    _set_fuel_raw(ctx, ctypes.c_uint64(max(left, 0)))
    return left >= 0


def define_host_func(linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType,
                     impl: Callable[[object, tuple[int, ...]], "int | None"],
                     on_error: Callable[[BaseException], None], keep: list) -> None:
    """Define `module.name` in `linker` as a raw callback: `impl(caller, args) -> result int`.

    Arguments arrive as unsigned ints (i32 masked to 32 bits, i64 to 64 bits). A Python exception
    in `impl` becomes a trap; `on_error` receives it first so the host can say why.
    """
    params = val_kinds(ty.params)
    results = val_kinds(ty.results)
    if any(k not in (I32, I64) for k in (*params, *results)) or len(results) > 1:
        raise TypeError(f"{module}.{name}: unsupported signature {params} -> {results}")
    res_kind = results[0] if results else None
    idx = tuple(enumerate(params))

    def callback(_env, caller, vals, _n):
        try:
            args = tuple((vals[i].i32 & _MASK32) if k == I32 else (vals[i].i64 & _MASK64) for i, k in idx)
            out = impl(caller, args)
            if res_kind == I32:
                vals[0].i32 = out if out < 0x80000000 else out - 0x100000000
            elif res_kind == I64:
                vals[0].i64 = out if out < 0x8000000000000000 else out - 0x10000000000000000
            return 0
        except BaseException as exc:  # noqa: BLE001 - any failure must become a trap, never cross C
            on_error(exc)
            msg = f"host function {name} failed: {type(exc).__name__}".encode()
            trap = _trap_new(ctypes.create_string_buffer(msg), len(msg))
            return ctypes.cast(trap, ctypes.c_void_p).value

    cb = _CALLBACK(callback)
    keep.append(cb)
    mod_b, name_b = module.encode(), name.encode()
    err = _define_unchecked(linker.ptr(), ctypes.create_string_buffer(mod_b), len(mod_b),
                            ctypes.create_string_buffer(name_b), len(name_b), ty.ptr(), cb, None, _no_finalizer)
    if err:
        raise WasmtimeError._from_ptr(err)
