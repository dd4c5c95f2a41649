"""What each of ao-loader's emscripten glues does differently (@permaweb/ao-loader 0.0.49, read from
its dist/index.cjs). The host (emscripten.py) replays the glue named by a process's Module-Format;
everything that differs between the glues, and so lands differently in memory or gas, is here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class GlueProfile:
    format: str
    # startup: "argv" = main(argc, argv) with argv on the stack (emscripten2); "none" = main(0, 0)
    # (emscripten3: the glue's callMain passes no arguments); None = main is never called (emscripten4)
    main_args: str | None
    fflush_after_main: bool
    # the exports the glue calls for stackSave / stackRestore / stackAlloc
    stack_save: str
    stack_restore: str
    stack_alloc: str
    # ccall's stack string: "utf16x4" = stackAlloc(4 * UTF-16 length + 1) (emscripten2's allocateUTF8OnStack);
    # "utf8" = stackAlloc(UTF-8 length + 1) (stringToUTF8OnStack)
    stack_string: str
    heap_max: int                       # the glue's getHeapMax()
    date_now_import: str                # the name of "Date.now() as f64"
    date_now_is_counter: bool           # emscripten2's `_emscripten_date_now` returns 0
    get_now_is_counter: bool            # emscripten_get_now: NaN (emscripten2) or the Date.now counter
    memcpy_import: str
    system_import: str                  # "system" (sets errno, -1) or "_emscripten_system" (-ENOSYS)
    abort_import: str
    time_args: str                      # "ptr": _gmtime_js(time_t*, tm*); "pair": (lo, hi, tm*); "i64": (t, tm*)
    tzset: str                          # "malloc": names malloc'd, once; "buffers": written into 7-byte buffers
    tempret_export: str | None          # export the glue calls with the high word of an i64 result
    stat_layout: str                    # "old" (emscripten2's doStat), "new" (64-bit size/times, ns) or
                                        # "wasm64" (104 bytes: u64 nlink, i64 size/times/nsec/ino)
    invoke_via_dyncall: bool            # invoke_* call dynCall_<sig> exports (emscripten4) or the table
    asyncify: bool
    # tzset "buffers": the zone name written into both buffers under TZ=UTC: emscripten3 takes the name in
    # parentheses of Date.toTimeString() ("Coordinated Universal Time") truncated to 6 bytes (a 7-byte
    # buffer); emscripten4 takes toLocaleTimeString's short name ("UTC", 17-byte buffers)
    tz_name: str = ""
    environment: bool = True            # emscripten4's getEnvStrings() returns [] (AO patched it): no environment
    # imports the glue provides besides invoke_* and metering.* (a module importing anything else does
    # not link under the loader); None: not checked (emscripten2, as before)
    provides: frozenset[str] | None = None
    # the invoke_* imports the glue defines (emscripten3/4: invoke_vii; wasm64: invoke_vjj)
    invokes: frozenset[str] = frozenset({"invoke_vii"})
    # memory64 (wasm64): pointers and size_t are i64 (BigInt in the glue); the glue reads and writes
    # pointer-sized and `long` fields as 8 bytes (iovecs, environ arrays, *pnum, stat, tm_gmtoff, tm_zone,
    # timezone, syscall pointer varargs, the Asyncify data header), and calls time functions with one
    # i64 time_t (time_args "i64"), `_mktime_js` returns an i64 (no tempret)
    ptr64: bool = False
    # Asyncify's rewind: emscripten4 calls the bottom export again with no arguments (0s); the wasm64
    # glue saves each export's arguments and calls it again with the same ones
    rewind_with_args: bool = False
    # how the file system reads the Date.now counter (emscripten_fs.MemFS.clock): "glue" is what the
    # wasm64 glue does (checked against the loader); "host" is the earlier model, kept for the wasm32
    # formats (whose glues order FS.staticInit and the counter the same way: see docs/emscripten.md)
    fs_clock: str = "host"
    # the *-metering formats: the loader gets the module unmetered and applies AO's metering pass
    # (metering.py) with this meter type at load time, then runs it with the glue above; None: the
    # module comes metered (or not at all) and runs as it is
    meter_type: str | None = None


_COMMON = frozenset({
    "__syscall_chmod", "__syscall_dup3", "__syscall_faccessat", "__syscall_fchmod", "__syscall_fchown32",
    "__syscall_fcntl64", "__syscall_fstat64", "__syscall_ftruncate64", "__syscall_getcwd", "__syscall_ioctl",
    "__syscall_lstat64", "__syscall_mkdirat", "__syscall_newfstatat", "__syscall_openat", "__syscall_readlinkat",
    "__syscall_renameat", "__syscall_rmdir", "__syscall_stat64", "__syscall_unlinkat", "__syscall_utimensat",
    "_emscripten_get_now_is_monotonic", "_emscripten_system", "_emscripten_throw_longjmp", "_gmtime_js",
    "_localtime_js", "_mktime_js", "_munmap_js", "_tzset_js", "emscripten_date_now", "emscripten_get_heap_max",
    "emscripten_get_now", "emscripten_resize_heap", "environ_get", "environ_sizes_get", "exit", "fd_close",
    "fd_fdstat_get", "fd_read", "fd_seek", "fd_sync", "fd_write", "strftime",
})

EMSCRIPTEN2 = GlueProfile(
    format="wasm32-unknown-emscripten2", main_args="argv", fflush_after_main=True,
    stack_save="stackSave", stack_restore="stackRestore", stack_alloc="stackAlloc", stack_string="utf16x4",
    heap_max=524288000, date_now_import="_emscripten_date_now", date_now_is_counter=False,
    get_now_is_counter=False, memcpy_import="emscripten_memcpy_big", system_import="system",
    abort_import="abort", time_args="ptr", tzset="malloc", tempret_export=None, stat_layout="old",
    invoke_via_dyncall=False, asyncify=False)

EMSCRIPTEN3 = GlueProfile(
    format="wasm32-unknown-emscripten3", main_args="none", fflush_after_main=True,
    stack_save="stackSave", stack_restore="stackRestore", stack_alloc="stackAlloc", stack_string="utf8",
    heap_max=4294901760, date_now_import="emscripten_date_now", date_now_is_counter=True,
    get_now_is_counter=True, memcpy_import="emscripten_memcpy_js", system_import="_emscripten_system",
    abort_import="abort", time_args="pair", tzset="buffers", tempret_export="setTempRet0", stat_layout="new",
    invoke_via_dyncall=False, asyncify=False, tz_name="Coordi",
    provides=_COMMON | {"abort", "_mmap_js", "emscripten_memcpy_js"})

EMSCRIPTEN4 = GlueProfile(
    format="wasm32-unknown-emscripten4", main_args=None, fflush_after_main=False,
    stack_save="emscripten_stack_get_current", stack_restore="_emscripten_stack_restore",
    stack_alloc="_emscripten_stack_alloc", stack_string="utf8",
    heap_max=4294901760, date_now_import="emscripten_date_now", date_now_is_counter=True,
    get_now_is_counter=True, memcpy_import="_emscripten_memcpy_js", system_import="_emscripten_system",
    abort_import="_abort_js", time_args="pair", tzset="buffers", tempret_export="_emscripten_tempret_set",
    stat_layout="new", invoke_via_dyncall=True, asyncify=True, environment=False, tz_name="UTC",
    provides=_COMMON | {"__assert_fail", "metering_gasUsed", "__asyncjs__weavedrive_close",
                        "__asyncjs__weavedrive_open", "__asyncjs__weavedrive_read", "__cxa_throw",
                        "_abort_js", "_emscripten_memcpy_js", "strftime_l"})

# wasm64-unknown-emscripten-draft_2024_02_15 (the loader's src/formats/wasm64-emscripten.cjs): the
# emscripten4 glue regenerated for MEMORY64, so everything is as for emscripten4 except what ptr64 says
# (see GlueProfile) and: getHeapMax() is 16 GiB; fcntl's lock commands are F_GETLK/F_SETLK/F_SETLKW
# = 5/6/7 (not the 12/13/14 of wasm32) with a pointer-sized argument; `_emscripten_system` is 0 for
# NULL else -ENOSYS (the Node branch is compiled out); the glue provides `emscripten_err` (prints) and
# `invoke_vjj` only; the Asyncify header is [u64 stack start, u64 stack end, i32 rewind id] (24 bytes
# before the unwind stack) and the rewind repeats the export's arguments; `metering.usegas` may take an
# i64 (the glue adds Number(amount)).
WASM64 = GlueProfile(
    format="wasm64-unknown-emscripten-draft_2024_02_15", main_args=None, fflush_after_main=False,
    stack_save="emscripten_stack_get_current", stack_restore="_emscripten_stack_restore",
    stack_alloc="_emscripten_stack_alloc", stack_string="utf8",
    heap_max=17179869184, date_now_import="emscripten_date_now", date_now_is_counter=True,
    get_now_is_counter=True, memcpy_import="_emscripten_memcpy_js", system_import="_emscripten_system",
    abort_import="_abort_js", time_args="i64", tzset="buffers", tempret_export=None,
    stat_layout="wasm64", invoke_via_dyncall=True, asyncify=True, environment=False, tz_name="UTC",
    provides=EMSCRIPTEN4.provides | {"emscripten_err"}, invokes=frozenset({"invoke_vjj"}),
    ptr64=True, rewind_with_args=True, fs_clock="glue")

# one per glue
PROFILES = {p.format: p for p in (EMSCRIPTEN2, EMSCRIPTEN3, EMSCRIPTEN4, WASM64)}

# the formats whose module the loader meters itself (`metering.meterWASM(binary, {meterType})`, i32 for
# wasm32, i64 for wasm64) before handing it to the emscripten4 / wasm64 glue: that glue's profile, under
# the format's name, with the meter type
EMSCRIPTEN_METERING = replace(EMSCRIPTEN4, format="wasm32-unknown-emscripten-metering", meter_type="i32")
WASM64_METERING = replace(WASM64, format="wasm64-unknown-emscripten-draft_2024_10_16-metering", meter_type="i64")
METERING_PROFILES = {p.format: p for p in (EMSCRIPTEN_METERING, WASM64_METERING)}

# emscripten4's Asyncify: the glue mallocs 12 + StackSize bytes per async call: [stack start, stack end,
# rewind id] then the unwind stack; the rewind id names the export at the bottom of the call stack
# (ids are handed out in order of first use; `handle` is the only such export, so 0). wasm64: 24 +
# StackSize bytes, [u64 start, u64 end, i32 id].
ASYNCIFY_STACK_SIZE = 41943040
ASYNC_IMPORTS = frozenset({"__asyncjs__weavedrive_open", "__asyncjs__weavedrive_read", "__asyncjs__weavedrive_close"})
