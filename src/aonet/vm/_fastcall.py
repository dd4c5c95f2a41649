"""Fast calls across the wasmtime boundary, through its C API (raw values, no type checks per call).

Why: `wasmtime.Func.__call__` spends ~15 µs per call converting and checking values; the unchecked C
entry point costs ~1 µs. A message needs five calls, so this is most of the host's overhead.
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
_call_unchecked = _B._wasmtime_func_call_unchecked
_caller_context = _B._wasmtime_caller_context
_memory_data = _B._wasmtime_memory_data
_memory_data_size = _B._wasmtime_memory_data_size
_trap_new = _B._wasmtime_trap_new
_define_unchecked = _B._wasmtime_linker_define_func_unchecked
_CALLBACK = _B.wasmtime_func_unchecked_callback_t
_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_no_finalizer = _FINALIZER(lambda _env: None)

I32, I64 = "i32", "i64"
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


def val_kinds(types: Sequence[wasmtime.ValType]) -> tuple[str, ...]:
    return tuple(str(t) for t in types)


class RawFunc:
    """One exported function of one store, callable with Python ints (unsigned results).

    Holds its argument buffer and trap slot, so a call allocates nothing but the result int.
    """
    __slots__ = ("_ctx", "_fn", "_vals", "_n", "_trap", "_params", "_result", "_func")

    def __init__(self, store: wasmtime.Store, func: wasmtime.Func, params: Sequence[str], results: Sequence[str]):
        if any(k not in (I32, I64) for k in (*params, *results)) or len(results) > 1:
            raise TypeError("only i32/i64 parameters and at most one result are supported")
        self._func = func                      # keep the Func (and so its raw struct) alive
        self._ctx = store._context()
        self._fn = ctypes.byref(func._func)
        self._n = max(len(params), len(results), 1)
        self._vals = (ValRaw * self._n)()
        self._trap = _TrapPtr()
        self._params = tuple(params)
        self._result = results[0] if results else None

    def __call__(self, *args: int) -> int | None:
        vals = self._vals
        for i, kind in enumerate(self._params):
            if kind == I32:
                vals[i].i32 = args[i] if args[i] < 0x80000000 else args[i] - 0x100000000
            else:
                vals[i].i64 = args[i] if args[i] < 0x8000000000000000 else args[i] - 0x10000000000000000
        err = _call_unchecked(self._ctx, self._fn, vals, self._n, ctypes.byref(self._trap))
        if err:
            take_pending_host_exception()
            raise WasmtimeError._from_ptr(err)
        if self._trap:
            trap = Trap._from_ptr(self._trap)
            self._trap = _TrapPtr()
            raise trap
        if self._result is None:
            return None
        if self._result == I32:
            return vals[0].i32 & _MASK32
        return vals[0].i64 & _MASK64


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
    ptr = _memory_data(ctx, memref)
    view.base = ctypes.cast(ptr, ctypes.c_void_p).value or 0
    view.size = _memory_data_size(ctx, memref)
    return view


def caller_context(caller):
    return _caller_context(caller)


_get_fuel = _B._wasmtime_context_get_fuel
_set_fuel = _B._wasmtime_context_set_fuel


def take_fuel(ctx, amount: int) -> bool:
    """Consume `amount` fuel in the store behind `ctx`; False (and fuel 0) when there is not enough."""
    fuel = ctypes.c_uint64()
    if _get_fuel(ctx, ctypes.byref(fuel)):
        return True                       # fuel metering off: nothing to charge
    left = fuel.value - amount
    _set_fuel(ctx, max(left, 0))
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
