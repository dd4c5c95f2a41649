"""emscripten's setjmp/longjmp trampolines (`invoke_*`, `_emscripten_throw_longjmp`) as wasm, built per module.

Why: Lua runs every protected call through an `invoke_*` import (~40 per message); as host functions
each was a wasm -> Python -> wasm round trip, most of a message's time. Here they are a small helper
module, generated from the main module's import signatures, that does what the loader's glue does:

    invoke_<sig>(index, a...):  sp = stackSave()
                                try { callee(index, a...) }          // table entry or dynCall_<sig>
                                catch (longjmp) { stackRestore(sp); setThrew(1, 0) }   // result: 0 / NaN
    _emscripten_throw_longjmp:  throw longjmp                        // a wasm exception tag

Anything else (a trap, out of gas, a host error) is not caught and unwinds to the host, as the glue
rethrows it. The helper is instantiated before the main module (the main imports its functions), so
it cannot import the main's exports: it calls them through its own funcref table, which the host fills
right after the main module is instantiated (`slots`). emscripten2/3 call the main's table entry: a
second small module, instantiated after the main and importing its table, does the `call_indirect`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .base import VMError

NUMERIC = ("i32", "i64", "f32", "f64")
SLOT_SAVE, SLOT_RESTORE, SLOT_SETTHREW, SLOT_FIRST_CALLEE = 0, 1, 2, 3
# what the glue's invoke_* returns after a longjmp: `undefined`, which wasm reads as 0 (i32) or NaN
# (f32/f64; V8's canonical quiet NaN). An i64 result would be a TypeError in the glue (no BigInt); no
# glue defines such an invoke, so it gets 0.
_CAUGHT_RESULT = {"i32": "(i32.const 0)", "i64": "(i64.const 0)", "f32": "(f32.const nan)", "f64": "(f64.const nan)"}

Sig = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True)
class InvokePlan:
    """What the host needs to build and wire one module's trampolines."""
    helper_wat: str                        # instantiated before the main module
    table_wat: str | None                  # emscripten2/3: calls into the main's table; after the main module
    invokes: tuple[str, ...]               # import names, in slot order (slot SLOT_FIRST_CALLEE + i)
    callees: tuple[str, ...]               # dynCall_<sig> export (or table_wat export) per invoke


def _func_type(params: Sequence[str], results: Sequence[str]) -> str:
    p = f" (param {' '.join(params)})" if params else ""
    r = f" (result {' '.join(results)})" if results else ""
    return f"(func{p}{r})"


def _check(name: str, params: Sequence[str], results: Sequence[str]) -> None:
    if any(k not in NUMERIC for k in (*params, *results)) or len(results) > 1:
        raise VMError(f"{name} has type {tuple(params)} -> {tuple(results)}: emscripten's glue cannot call it "
                      f"(only numbers cross the JavaScript boundary)")


def _convert(name: str, j: int, have: str, want: str) -> str:
    """Argument j of an invoke as the callee takes it: the wasm64 glue calls dynCall_<sig>(Number(index),
    ...), so an i64 index reaches an i32 parameter as ToInt32 of it (a wrap, for any real index)."""
    if have == want:
        return f"(local.get {j})"
    if (have, want) == ("i64", "i32"):
        return f"(i32.wrap_i64 (local.get {j}))"
    raise VMError(f"{name}: argument {j} is {have} but its callee takes {want} (the glue cannot pass it)")


def plan_invokes(invokes: Sequence[tuple[str, Sig, "Sig | None"]], throw_sig: Sig | None, save: Sig, restore: Sig,
                 set_threw: Sig, via_dyncall: bool) -> InvokePlan:
    """The helper (and table caller) WAT for a module importing `invokes` (name, (params, results), the
    dynCall_<sig> export's type when via_dyncall) and,
    if `throw_sig` is not None, `_emscripten_throw_longjmp`; save/restore/set_threw are the types of the
    main's stackSave/stackRestore/setThrew exports as the glue names them for this format."""
    ptr = save[1][0] if len(save[1]) == 1 else "i32"
    if save[0] or restore != ((ptr,), ()) or set_threw != ((ptr, "i32"), ()) or ptr not in ("i32", "i64"):
        raise VMError(f"stack exports have unexpected types (stackSave {save}, stackRestore {restore}, "
                      f"setThrew {set_threw})")
    types = [f"  (type $save {_func_type(*save)})", f"  (type $restore {_func_type(*restore)})",
             f"  (type $setthrew {_func_type(*set_threw)})"]
    funcs = []
    if throw_sig is not None:
        _check("_emscripten_throw_longjmp", *throw_sig)
        types.append(f"  (type $throw {_func_type(*throw_sig)})")
        funcs.append("  (func (export \"_emscripten_throw_longjmp\") (type $throw) (throw $longjmp))")
    table_types, table_funcs, callees = [], [], []
    for i, (name, (params, results), callee) in enumerate(invokes):
        _check(name, params, results)
        if not params:
            raise VMError(f"{name} takes no table index")
        types.append(f"  (type $t{i} {_func_type(params, results)})")
        if via_dyncall:
            cparams, cresults = callee if callee is not None else (params, results)
            if len(cparams) != len(params) or tuple(cresults) != tuple(results):
                raise VMError(f"{name} has type {tuple(params)} -> {tuple(results)} but dynCall_{name[7:]} has "
                              f"type {tuple(cparams)} -> {tuple(cresults)}")
            types.append(f"  (type $c{i} {_func_type(cparams, cresults)})")
            args = " ".join(_convert(name, j, k, c) for j, (k, c) in enumerate(zip(params, cparams)))
        else:
            types.append(f"  (type $c{i} {_func_type(params, results)})")
            args = " ".join(f"(local.get {j})" for j in range(len(params)))
        res = f" (result {results[0]})" if results else ""
        funcs.append(
            f"  (func (export \"{name}\") (type $t{i}) (local $sp {ptr})\n"
            f"    (local.set $sp (call_indirect $slots (type $save) (i32.const {SLOT_SAVE})))\n"
            f"    (block $caught\n"
            f"      (try_table{res} (catch $longjmp $caught)\n"
            f"        (call_indirect $slots (type $c{i}) {args} (i32.const {SLOT_FIRST_CALLEE + i})))\n"
            f"      (return))\n"
            f"    (call_indirect $slots (type $restore) (local.get $sp) (i32.const {SLOT_RESTORE}))\n"
            f"    (call_indirect $slots (type $setthrew) ({ptr}.const 1) (i32.const 0) (i32.const {SLOT_SETTHREW}))"
            f"{' ' + _CAUGHT_RESULT[results[0]] if results else ''})")
        if via_dyncall:
            callees.append(f"dynCall_{name[7:]}")
            continue
        if params[0] != "i32":
            raise VMError(f"{name}: a table index of type {params[0]} (the table is 32-bit)")
        table_types += [f"  (type $t{i} {_func_type(params, results)})",
                        f"  (type $e{i} {_func_type(params[1:], results)})"]
        rest = "".join(f" (local.get {j})" for j in range(1, len(params)))
        table_funcs.append(f"  (func (export \"call{i}\") (type $t{i}) "
                           f"(call_indirect $main (type $e{i}){rest} (local.get 0)))")
        callees.append(f"call{i}")
    helper = "\n".join(["(module", *types, "  (tag $longjmp)",
                        f"  (table $slots (export \"slots\") {SLOT_FIRST_CALLEE + len(invokes)} funcref)",
                        *funcs]) + ")"
    table_wat = None
    if table_funcs:
        table_wat = "\n".join(["(module", "  (import \"main\" \"table\" (table $main 0 funcref))",
                               *table_types, *table_funcs]) + ")"
    return InvokePlan(helper, table_wat, tuple(n for n, _s, _c in invokes), tuple(callees))
