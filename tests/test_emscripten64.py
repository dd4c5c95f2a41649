"""aonet's host for `wasm64-unknown-emscripten-draft_2024_02_15` (memory64, the loader's
src/formats/wasm64-emscripten.cjs) against @permaweb/ao-loader 0.0.49, message for message: the same
Output, Messages, Spawns, Assignments, Error, GasUsed and memory sha256 after every message.

Two modules:
- a hand-written memory64 module (below, WAT made in Python): it calls each 64-bit path of the glue
  directly, with the signatures a MEMORY64 emscripten build gives them, and runs without emscripten;
  its aonet-only test checks literal values, so the profile is tested where Node is missing too;
- the emlua Lua process built for wasm64 with Debian's emscripten 3.1.6 (tests/modules/emlua64,
  helper module test_emscripten64_build.py): the messages of test_emscripten.py and its EXTRA.
Node 20 needs --experimental-wasm-memory64 to run the loader's wasm64 glue.

The hand-written module: the message's `Data` picks the operation (first character):
  a  the glue's helpers (fd_write, environ, heap max, tzset, localtime/strftime, mktime, gmtime,
     memcpy, system, getcwd, fdstat, ioctl, fcntl, i64 usegas, metering_gasUsed)
  f  a file: openat, fd_write, fd_seek, fd_read (two iovecs), fstat64, ftruncate64, fd_close
  c  the clock (emscripten_date_now, emscripten_get_now)
  j  invoke_vjj without and with a longjmp
  d  weavedrive_open through Asyncify (unwind, rewind with the same arguments)
  h  malloc 8 MiB (the heap grows like the glue grows it)
  e  an error after writing memory (ok=false)
  g  burn gas forever (out of gas)
Its Asyncify functions emulate Binaryen's protocol (a state, the data header's [start, end] checked,
"locals" saved at start and restored on the rewind), which is what the glue and the host drive.
MEMFS inode numbers and times in struct stat cannot match (documented): those bytes are zeroed after
the fields that can be compared are read.
"""
from __future__ import annotations

import os
import re
import shutil

import pytest
import wasmtime

from aonet.vm.base import Limits, VMError
from aonet.vm.emscripten import EmscriptenRuntime
from aonet.vm.emscripten_profile import ASYNCIFY_STACK_SIZE, EMSCRIPTEN4, PROFILES, WASM64

from test_emscripten import (ENV, LOADER, ROOT, SEQUENCE, _msg, fresh_instance_continues, images_match_loader,
                             result_is_loaders, run_loader, runtime)

FORMAT = WASM64.format
RUNNER = ROOT / "tests" / "js" / "aoloader_run.cjs"


# -- the hand-written memory64 module ------------------------------------------------------------
class _Strings:
    """Constant C strings in a data segment, by address."""

    def __init__(self, base: int):
        self.base = self.next = base
        self.items: list[tuple[int, bytes]] = []
        self.addr: dict[bytes, int] = {}

    def __call__(self, s: str | bytes) -> int:
        b = s.encode() if isinstance(s, str) else s
        if b not in self.addr:
            self.addr[b] = self.next
            self.items.append((self.next, b + b"\0"))
            self.next += len(b) + 1
        return self.addr[b]

    def segments(self) -> str:
        def esc(b: bytes) -> str:
            return "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else f"\\{c:02x}" for c in b)
        return "\n".join(f'  (data (i64.const {a}) "{esc(b)}")' for a, b in self.items)


S = _Strings(1024)
SCRATCH = 8192            # static scratch: 8192 .. 32767
STACK_END, STACK_TOP = 32768, 65536
HEAP0 = 65536
BRK = 4160                # i64 break, i64 last block


def _le64(v: int) -> str:
    return "".join(f"\\{b:02x}" for b in v.to_bytes(8, "little"))


def _lit(s: str) -> str:
    return f"(call $puts (i64.const {S(s)}))"


def _num(expr: str) -> str:
    return f"(call $putn {expr})"


def _item(label: str, expr: str) -> str:
    return _lit(label) + _num(expr) + _lit(" ")


def wat() -> str:
    L = _lit
    T = SCRATCH
    ops_a = "\n".join([
        # fd_write(2, iov[2], 2, &n): 16-byte iovecs, n is a u64 (prefilled with ones)
        f"(i64.store (i64.const {T}) (i64.const {S('hello ')})) (i64.store (i64.const {T + 8}) (i64.const 6))",
        f"(i64.store (i64.const {T + 16}) (i64.const {S('world!')})) (i64.store (i64.const {T + 24}) (i64.const 6))",
        f"(i64.store (i64.const {T + 32}) (i64.const -1))",
        f"(drop (call $fd_write (i32.const 2) (i64.const {T}) (i64.const 2) (i64.const {T + 32})))",
        _item("w=", f"(i64.load (i64.const {T + 32}))"),
        # environ_sizes_get: two u64 (prefilled)
        f"(i64.store (i64.const {T + 40}) (i64.const -1)) (i64.store (i64.const {T + 48}) (i64.const -1))",
        f"(drop (call $environ_sizes_get (i64.const {T + 40}) (i64.const {T + 48})))",
        _item("env=", f"(i64.load (i64.const {T + 40}))") + _item("envsize=", f"(i64.load (i64.const {T + 48}))"),
        _item("heapmax=", "(call $get_heap_max)"),
        _item("mono=", "(i64.extend_i32_u (call $now_mono))"),
        # tzset: long timezone (8 bytes), int daylight, two 17-byte names
        f"(i64.store (i64.const {T + 64}) (i64.const -1)) (i32.store (i64.const {T + 72}) (i32.const -1))",
        f"(call $tzset (i64.const {T + 64}) (i64.const {T + 72}) (i64.const {T + 80}) (i64.const {T + 100}))",
        _item("tz=", f"(i64.load (i64.const {T + 64}))") + _item("dl=", f"(i64.load32_s (i64.const {T + 72}))"),
        L("std=") + f"(call $puts (i64.const {T + 80}))" + L(" dst=") + f"(call $puts (i64.const {T + 100}))" + L(" "),
        # localtime(365 days) into a tm prefilled with 0xff (56 bytes), tm_zone = std name, then strftime
        f"(memory.fill (i64.const {T + 128}) (i32.const 255) (i64.const 56))",
        f"(call $localtime (i64.const 31536000) (i64.const {T + 128}))",
        _item("gmtoff=", f"(i64.load (i64.const {T + 168}))") + _item("pad=", f"(i64.load32_s (i64.const {T + 164}))"),
        _item("isdst=", f"(i64.load32_s (i64.const {T + 160}))"),
        f"(i64.store (i64.const {T + 176}) (i64.const {T + 80}))",
        _item("n=", f"(call $strftime (i64.const {T + 256}) (i64.const 100) (i64.const {S('%c|%Z|%z|%j|%x')}) (i64.const {T + 128}))"),
        f"(call $puts (i64.const {T + 256}))" + L(" "),
        _item("small=", f"(call $strftime (i64.const {T + 256}) (i64.const 3) (i64.const {S('%Y')}) (i64.const {T + 128}))"),
        # mktime of 2023-11-14 22:13:20, isdst -1: an i64 result, normalised fields
        f"(memory.fill (i64.const {T + 384}) (i32.const 0) (i64.const 56))",
        f"(i32.store (i64.const {T + 384}) (i32.const 20)) (i32.store (i64.const {T + 388}) (i32.const 13))",
        f"(i32.store (i64.const {T + 392}) (i32.const 22)) (i32.store (i64.const {T + 396}) (i32.const 14))",
        f"(i32.store (i64.const {T + 400}) (i32.const 10)) (i32.store (i64.const {T + 404}) (i32.const 123))",
        f"(i32.store (i64.const {T + 416}) (i32.const -1))",
        _item("mktime=", f"(call $mktime (i64.const {T + 384}))"),
        _item("wday=", f"(i64.load32_s (i64.const {T + 408}))") + _item("yday=", f"(i64.load32_s (i64.const {T + 412}))"),
        _item("mkdst=", f"(i64.load32_s (i64.const {T + 416}))"),
        # gmtime(-1): 1969-12-31 23:59:59
        f"(call $gmtime (i64.const -1) (i64.const {T + 448}))",
        _item("gy=", f"(i64.load32_s (i64.const {T + 468}))") + _item("gh=", f"(i64.load32_s (i64.const {T + 456}))"),
        _item("gyday=", f"(i64.load32_s (i64.const {T + 476}))"),
        # big times: an i64 time beyond 2^32 seconds (year 2106+)
        f"(call $gmtime (i64.const 4294967296) (i64.const {T + 448}))",
        _item("gy2=", f"(i64.load32_s (i64.const {T + 468}))"),
        # memcpy
        f"(call $memcpy_js (i64.const {T + 512}) (i64.const {S('copied')}) (i64.const 7))",
        L("mc=") + f"(call $puts (i64.const {T + 512}))" + L(" "),
        _item("sys0=", "(i64.extend_i32_s (call $system (i64.const 0)))"),
        _item("sys=", f"(i64.extend_i32_s (call $system (i64.const {S('ls')})))"),
        # getcwd
        _item("cwdret=", f"(i64.extend_i32_s (call $getcwd (i64.const {T + 528}) (i64.const 64)))"),
        L("cwd=") + f"(call $puts (i64.const {T + 528}))" + L(" "),
        _item("cwdsmall=", f"(i64.extend_i32_s (call $getcwd (i64.const {T + 528}) (i64.const 1)))"),
        # fdstat of stdout and of /dev/tty-less fd 9 (EBADF): 24 bytes prefilled with 0xff
        f"(memory.fill (i64.const {T + 600}) (i32.const 255) (i64.const 24))",
        _item("fdst=", f"(i64.extend_i32_s (call $fd_fdstat_get (i32.const 1) (i64.const {T + 600})))"),
        _item("type=", f"(i64.load8_u (i64.const {T + 600}))") + _item("b1=", f"(i64.load8_u (i64.const {T + 601}))"),
        _item("flags=", f"(i64.load16_u (i64.const {T + 602}))") + _item("rights=", f"(i64.load (i64.const {T + 608}))"),
        _item("fdbad=", f"(i64.extend_i32_s (call $fd_fdstat_get (i32.const 9) (i64.const {T + 600})))"),
        # ioctl: pointer varargs (8 bytes) -> winsize / termios
        f"(i64.store (i64.const {T + 640}) (i64.const {T + 648})) (i64.store (i64.const {T + 648}) (i64.const -1))",
        _item("winsz=", f"(i64.extend_i32_s (call $ioctl (i32.const 1) (i32.const 21523) (i64.const {T + 640})))"),
        _item("rows=", f"(i64.load16_u (i64.const {T + 648}))") + _item("cols=", f"(i64.load16_u (i64.const {T + 650}))"),
        f"(i64.store (i64.const {T + 648}) (i64.const -1))",
        _item("winsz2=", f"(i64.extend_i32_s (call $ioctl (i32.const 2) (i32.const 21523) (i64.const {T + 640})))"),
        _item("w2=", f"(i64.load (i64.const {T + 648}))"),
        f"(i64.store (i64.const {T + 640}) (i64.const {T + 656}))",
        f"(memory.fill (i64.const {T + 656}) (i32.const 255) (i64.const 60))",
        _item("tcgets=", f"(i64.extend_i32_s (call $ioctl (i32.const 0) (i32.const 21505) (i64.const {T + 640})))"),
        _item("lflag=", f"(i64.load32_u (i64.const {T + 668}))") + _item("cc1=", f"(i64.load8_u (i64.const {T + 674}))"),
        _item("ioctlbad=", f"(i64.extend_i32_s (call $ioctl (i32.const 1) (i32.const 9999) (i64.const {T + 640})))"),
        _item("fionbio=", f"(i64.extend_i32_s (call $ioctl (i32.const 1) (i32.const 21531) (i64.const {T + 640})))"),
        # fcntl F_GETLK (5 under wasm64) with a pointer vararg; F_GETLK64 of wasm32 (12) is EINVAL here
        f"(i64.store (i64.const {T + 720}) (i64.const {T + 728})) (i64.store (i64.const {T + 728}) (i64.const -1))",
        _item("getlk=", f"(i64.extend_i32_s (call $fcntl (i32.const 1) (i32.const 5) (i64.const {T + 720})))"),
        _item("ltype=", f"(i64.load16_s (i64.const {T + 728}))"),
        _item("getlk64=", f"(i64.extend_i32_s (call $fcntl (i32.const 1) (i32.const 12) (i64.const {T + 720})))"),
        _item("getfl=", "(i64.extend_i32_s (call $fcntl (i32.const 1) (i32.const 3) (i64.const 0)))"),
        # i64 gas above 2^32, and the glue's running total
        "(call $usegas (i64.const 5000000000))",
        _item("gas>5e9=", "(i64.extend_i32_u (i64.gt_s (i64.trunc_f64_s (call $gas_used)) (i64.const 5000000000)))"),
    ])
    ops_f = "\n".join([
        f"(i32.store (i64.const {T}) (i32.const 420))",
        f"(local.set $fd (call $openat (i32.const -100) (i64.const {S('/tmp/f64')}) (i32.const 66) (i64.const {T})))",
        _item("fd=", "(i64.extend_i32_s (local.get $fd))"),
        f"(i64.store (i64.const {T + 16}) (i64.const {S('0123456789')})) (i64.store (i64.const {T + 24}) (i64.const 10))",
        f"(i64.store (i64.const {T + 32}) (i64.const -1))",
        _item("wr=", f"(i64.extend_i32_s (call $fd_write (local.get $fd) (i64.const {T + 16}) (i64.const 1) (i64.const {T + 32})))"),
        _item("n=", f"(i64.load (i64.const {T + 32}))"),
        f"(i64.store (i64.const {T + 40}) (i64.const -1))",
        _item("seek=", f"(i64.extend_i32_s (call $fd_seek (local.get $fd) (i64.const 3) (i32.const 0) (i64.const {T + 40})))"),
        _item("pos=", f"(i64.load (i64.const {T + 40}))"),
        f"(memory.fill (i64.const {T + 64}) (i32.const 0) (i64.const 16))",
        f"(i64.store (i64.const {T + 96}) (i64.const {T + 64})) (i64.store (i64.const {T + 104}) (i64.const 2))",
        f"(i64.store (i64.const {T + 112}) (i64.const {T + 72})) (i64.store (i64.const {T + 120}) (i64.const 3))",
        f"(i64.store (i64.const {T + 128}) (i64.const -1))",
        _item("rd=", f"(i64.extend_i32_s (call $fd_read (local.get $fd) (i64.const {T + 96}) (i64.const 2) (i64.const {T + 128})))"),
        _item("nr=", f"(i64.load (i64.const {T + 128}))"),
        L("a=") + f"(call $puts (i64.const {T + 64}))" + L(" b=") + f"(call $puts (i64.const {T + 72}))" + L(" "),
        f"(memory.fill (i64.const {T + 256}) (i32.const 255) (i64.const 112))",
        _item("st=", f"(i64.extend_i32_s (call $fstat (local.get $fd) (i64.const {T + 256})))"),
        _item("nlink=", f"(i64.load (i64.const {T + 264}))") + _item("size=", f"(i64.load (i64.const {T + 288}))"),
        _item("blksize=", f"(i64.load32_s (i64.const {T + 296}))") + _item("blocks=", f"(i64.load32_s (i64.const {T + 300}))"),
        _item("uid=", f"(i64.load32_s (i64.const {T + 272}))") + _item("tail=", f"(i64.load (i64.const {T + 360}))"),
        f"(memory.fill (i64.const {T + 256}) (i32.const 0) (i64.const 112))",     # MEMFS ino/times: not compared
        _item("trunc=", "(i64.extend_i32_s (call $ftruncate (local.get $fd) (i64.const 4)))"),
        _item("st2=", f"(i64.extend_i32_s (call $fstat (local.get $fd) (i64.const {T + 256})))"),
        _item("size2=", f"(i64.load (i64.const {T + 288}))"),
        f"(memory.fill (i64.const {T + 256}) (i32.const 0) (i64.const 112))",
        _item("fchmod=", "(i64.extend_i32_s (call $fchmod (local.get $fd) (i32.const 384)))"),
        _item("chmod=", f"(i64.extend_i32_s (call $chmod (i64.const {S('/tmp/f64')}) (i32.const 420)))"),
        _item("chmodnf=", f"(i64.extend_i32_s (call $chmod (i64.const {S('/tmp/nope')}) (i32.const 420)))"),
        _item("close=", "(i64.extend_i32_s (call $fd_close (local.get $fd)))"),
        _item("badfd=", f"(i64.extend_i32_s (call $fstat (i32.const 77) (i64.const {T + 256})))"),
    ])
    return f"""(module
  (type $vjj (func (param i64 i64)))
  (import "metering" "usegas" (func $usegas (param i64)))
  (import "env" "emscripten_resize_heap" (func $resize_heap (param i64) (result i32)))
  (import "env" "emscripten_get_heap_max" (func $get_heap_max (result i64)))
  (import "env" "_emscripten_get_now_is_monotonic" (func $now_mono (result i32)))
  (import "env" "emscripten_date_now" (func $date_now (result f64)))
  (import "env" "emscripten_get_now" (func $get_now (result f64)))
  (import "env" "metering_gasUsed" (func $gas_used (result f64)))
  (import "env" "_tzset_js" (func $tzset (param i64 i64 i64 i64)))
  (import "env" "_localtime_js" (func $localtime (param i64 i64)))
  (import "env" "_gmtime_js" (func $gmtime (param i64 i64)))
  (import "env" "_mktime_js" (func $mktime (param i64) (result i64)))
  (import "env" "strftime" (func $strftime (param i64 i64 i64 i64) (result i64)))
  (import "env" "_emscripten_memcpy_js" (func $memcpy_js (param i64 i64 i64)))
  (import "env" "_emscripten_system" (func $system (param i64) (result i32)))
  (import "env" "__syscall_getcwd" (func $getcwd (param i64 i64) (result i32)))
  (import "env" "__syscall_ioctl" (func $ioctl (param i32 i32 i64) (result i32)))
  (import "env" "__syscall_fcntl64" (func $fcntl (param i32 i32 i64) (result i32)))
  (import "env" "__syscall_openat" (func $openat (param i32 i64 i32 i64) (result i32)))
  (import "env" "__syscall_fstat64" (func $fstat (param i32 i64) (result i32)))
  (import "env" "__syscall_ftruncate64" (func $ftruncate (param i32 i64) (result i32)))
  (import "env" "__syscall_fchmod" (func $fchmod (param i32 i32) (result i32)))
  (import "env" "__syscall_chmod" (func $chmod (param i64 i32) (result i32)))
  (import "env" "invoke_vjj" (func $invoke_vjj (param i32 i64 i64)))
  (import "env" "_emscripten_throw_longjmp" (func $throw_longjmp))
  (import "env" "__asyncjs__weavedrive_open" (func $drive_open (param i64 i64) (result i32)))
  (import "env" "emscripten_err" (func $em_err (param i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i64 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i64 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i64 i64) (result i32)))
  (memory (export "memory") i64 2 65536)
  (table (export "__indirect_function_table") 2 funcref)
  (elem (i32.const 1) $protected)
  (global $sp (mut i64) (i64.const {STACK_TOP}))
  ;; the heap's break and last block live in memory (memory is the whole state between messages)
  (data (i64.const {BRK}) "{_le64(HEAP0)}")
  (global $threw (mut i64) (i64.const 0))
  (global $astate (mut i32) (i32.const 0))
  (global $adata (mut i64) (i64.const 0))
  (global $out (mut i64) (i64.const 0))
  (global $olen (mut i64) (i64.const 0))
  (global $boots (mut i32) (i32.const 0))
__SEGMENTS__
  (func (export "emscripten_stack_init"))
  (func (export "emscripten_stack_get_end") (result i64) (i64.const {STACK_END}))
  (func (export "emscripten_stack_get_current") (result i64) (global.get $sp))
  (func (export "_emscripten_stack_restore") (param i64) (global.set $sp (local.get 0)))
  (func (export "_emscripten_stack_alloc") (param i64) (result i64)
    (global.set $sp (i64.and (i64.sub (global.get $sp) (local.get 0)) (i64.const -16)))
    (global.get $sp))
  (func (export "__wasm_call_ctors")
    (global.set $boots (i32.add (global.get $boots) (i32.const 1)))
    (i32.store (i64.const 4096) (global.get $boots)))
  (func $malloc (export "malloc") (param $n i64) (result i64) (local $p i64) (local $end i64)
    (call $usegas (i64.const 7))
    (local.set $p (i64.load (i64.const {BRK})))
    (local.set $end (i64.add (local.get $p) (i64.and (i64.add (local.get $n) (i64.const 15)) (i64.const -16))))
    (if (i64.gt_u (local.get $end) (i64.mul (memory.size) (i64.const 65536)))
      (then (if (i32.eqz (call $resize_heap (local.get $end))) (then (return (i64.const 0))))))
    (i64.store (i64.const {BRK}) (local.get $end))
    (i64.store (i64.const {BRK + 8}) (local.get $p))
    (local.get $p))
  (func (export "free") (param $p i64)
    (if (i64.eq (local.get $p) (i64.load (i64.const {BRK + 8}))) (then (i64.store (i64.const {BRK}) (local.get $p)))))
  (func (export "setThrew") (param i64 i32) (global.set $threw (local.get 0)))
  (func (export "dynCall_vjj") (param i32 i64 i64)
    (call_indirect (type $vjj) (local.get 1) (local.get 2) (local.get 0)))
  (func (export "asyncify_start_unwind") (param i64)
    (if (i64.gt_u (i64.load (local.get 0)) (i64.load offset=8 (local.get 0))) (then unreachable))
    (global.set $astate (i32.const 1)) (global.set $adata (local.get 0)))
  (func (export "asyncify_stop_unwind") (global.set $astate (i32.const 0)))
  (func (export "asyncify_start_rewind") (param i64)
    (global.set $astate (i32.const 2)) (global.set $adata (local.get 0)))
  (func (export "asyncify_stop_rewind") (global.set $astate (i32.const 0)))
  (func $protected (param $a i64) (param $b i64)
    (global.set $sp (i64.sub (global.get $sp) (i64.const 32)))
    (i64.store (i64.const {SCRATCH + 4000}) (local.get $a))
    (if (i64.ne (local.get $b) (i64.const 0)) (then (call $throw_longjmp))))
  (func $putc (param $c i32)
    (i32.store8 (i64.add (global.get $out) (global.get $olen)) (local.get $c))
    (global.set $olen (i64.add (global.get $olen) (i64.const 1))))
  (func $puts (param $s i64)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (local.get $s))))
      (call $putc (i32.load8_u (local.get $s)))
      (local.set $s (i64.add (local.get $s) (i64.const 1)))
      (br $next))))
  (func $putn (param $v i64) (local $buf i64) (local $n i64)
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then (call $putc (i32.const 45)) (local.set $v (i64.sub (i64.const 0) (local.get $v)))))
    (local.set $buf (i64.const {SCRATCH + 4064}))
    (local.set $n (i64.const 0))
    (loop $digits
      (i64.store8 (i64.add (local.get $buf) (local.get $n)) (i64.add (i64.const 48) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $n (i64.add (local.get $n) (i64.const 1)))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digits (i64.ne (local.get $v) (i64.const 0))))
    (loop $emit
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (call $putc (i32.load8_u (i64.add (local.get $buf) (local.get $n))))
      (br_if $emit (i64.ne (local.get $n) (i64.const 0)))))
  (func $find_op (param $m i64) (result i32) (local $k i64)
    ;; the byte after the first '"Data":"' in the message
    (block $none (loop $scan
      (br_if $none (i32.eqz (i32.load8_u (local.get $m))))
      (local.set $k (i64.const 0))
      (block $miss (loop $cmp
        (br_if $miss (i32.ne (i32.load8_u (i64.add (local.get $m) (local.get $k)))
                             (i32.load8_u (i64.add (i64.const {S('"Data":"')}) (local.get $k)))))
        (local.set $k (i64.add (local.get $k) (i64.const 1)))
        (if (i64.eq (local.get $k) (i64.const 8))
          (then (return (i32.load8_u (i64.add (local.get $m) (i64.const 8))))))
        (br $cmp)))
      (local.set $m (i64.add (local.get $m) (i64.const 1)))
      (br $scan)))
    (i32.const 0))
  (func $begin
    (global.set $out (call $malloc (i64.const 8192)))
    (global.set $olen (i64.const 0))
    {_lit('{"ok":true,"response":{"Output":"')})
  (func $finish (result i64)
    {_lit('"}}')}
    (call $putc (i32.const 0))
    (global.get $out))
  (func (export "handle") (param $msg i64) (param $env i64) (result i64)
    (local $op i32) (local $fd i32) (local $sp0 i64) (local $r i32) (local $cur i64) (local $p i64)
    (call $usegas (i64.const 100))
    (if (i32.eq (global.get $astate) (i32.const 2))
      (then (return (call $drive (local.get $msg) (local.get $env)))))
    (local.set $op (call $find_op (local.get $msg)))
    (if (i32.eq (local.get $op) (i32.const 100)) (then (return (call $drive (local.get $msg) (local.get $env)))))
    (if (i32.eq (local.get $op) (i32.const 101))          ;; e: write, then fail
      (then
        (i32.store (i64.const 4100) (i32.const 77))
        (local.set $p (call $malloc (i64.const 64)))
        (return (i64.const {S('{"ok":false,"response":"failing on purpose"}')}))))
    (if (i32.eq (local.get $op) (i32.const 103))          ;; g: burn gas forever
      (then (loop $burn (call $usegas (i64.const 1000003)) (br $burn))))
    (call $begin)
    (if (i32.eq (local.get $op) (i32.const 97)) (then
{ops_a}))
    (if (i32.eq (local.get $op) (i32.const 102)) (then
{ops_f}))
    (if (i32.eq (local.get $op) (i32.const 99)) (then
      {_item("date=", "(i64.trunc_f64_s (call $date_now))")}
      {_item("now=", "(i64.trunc_f64_s (call $get_now))")}
      {_item("date2=", "(i64.trunc_f64_s (call $date_now))")}
      (call $em_err (i64.const {S('a line for stderr')}))))
    (if (i32.eq (local.get $op) (i32.const 106)) (then      ;; j: invoke_vjj, then with a longjmp
      (local.set $sp0 (global.get $sp))
      (global.set $sp (i64.sub (global.get $sp) (i64.const 64)))
      (global.set $threw (i64.const 0))
      (call $invoke_vjj (i32.const 1) (i64.const 7) (i64.const 0))
      {_item("threw=", "(global.get $threw)")}
      {_item("spdrop=", "(i64.sub (local.get $sp0) (global.get $sp))")}
      {_item("a=", f"(i64.load (i64.const {SCRATCH + 4000}))")}
      (global.set $sp (i64.sub (local.get $sp0) (i64.const 64)))
      (call $invoke_vjj (i32.const 1) (i64.const 9) (i64.const 1))
      {_item("threw2=", "(global.get $threw)")}
      {_item("spdrop2=", "(i64.sub (local.get $sp0) (global.get $sp))")}
      {_item("a2=", f"(i64.load (i64.const {SCRATCH + 4000}))")}
      (global.set $sp (local.get $sp0))))
    (if (i32.eq (local.get $op) (i32.const 104)) (then      ;; h: grow the heap
      (local.set $p (call $malloc (i64.const 8388608)))
      (i32.store8 (i64.add (local.get $p) (i64.const 8388607)) (i32.const 1))
      {_item("mem=", "(i64.mul (memory.size) (i64.const 65536))")}
      {_item("brk=", f"(i64.load (i64.const {BRK}))")}))
    (call $finish))
  (func $drive (param $msg i64) (param $env i64) (result i64) (local $r i32) (local $cur i64) (local $saved i64)
    (local $smsg i64) (local $head i64) (local $id i64) (local $start i64)
    (if (i32.eq (global.get $astate) (i32.const 2))
      (then                                                ;; rewinding: restore our "locals"
        (local.set $cur (i64.sub (i64.load (global.get $adata)) (i64.const 16)))
        (i64.store (global.get $adata) (local.get $cur))
        (local.set $saved (i64.load (local.get $cur)))
        (local.set $smsg (i64.load offset=8 (local.get $cur)))
        (local.set $head (i64.sub (i64.load offset=8 (global.get $adata)) (global.get $adata)))
        (local.set $id (i64.load32_s offset=16 (global.get $adata)))
        (local.set $start (i64.sub (local.get $cur) (global.get $adata)))
        (local.set $r (call $drive_open (i64.const {S('/data/some-tx')}) (i64.const {S('r')})))
        (call $begin)
        {_item("open=", "(i64.extend_i32_s (local.get $r))")}
        {_item("saved=", "(local.get $saved)")}
        {_item("sameargs=", "(i64.extend_i32_u (i64.eq (local.get $smsg) (local.get $msg)))")}
        {_item("end=", "(local.get $head)")}
        {_item("start=", "(local.get $start)")}
        {_item("id=", "(local.get $id)")}
        {_item("state=", "(i64.extend_i32_u (global.get $astate))")}
        (return (call $finish))))
    (local.set $r (call $drive_open (i64.const {S('/data/some-tx')}) (i64.const {S('r')})))
    (if (i32.eq (global.get $astate) (i32.const 1))
      (then                                                ;; unwinding: save our "locals", return
        (local.set $cur (i64.load (global.get $adata)))
        (if (i64.gt_u (i64.add (local.get $cur) (i64.const 16)) (i64.load offset=8 (global.get $adata)))
          (then unreachable))
        (i64.store (local.get $cur) (i64.const 11259375))
        (i64.store offset=8 (local.get $cur) (local.get $msg))
        (i64.store (global.get $adata) (i64.add (local.get $cur) (i64.const 16)))
        (return (i64.const 0))))
    (call $begin)
    {_item("sync=", "(i64.extend_i32_s (local.get $r))")}
    (call $finish))
)"""


def module_bytes() -> bytes:
    text = wat()
    return wasmtime.wat2wasm(text.replace("__SEGMENTS__", S.segments()))


_WAT_CACHE: list[bytes] = []


def wat_module() -> bytes:
    if not _WAT_CACHE:
        _WAT_CACHE.append(module_bytes())
    return _WAT_CACHE[0]


# -- running the loader -------------------------------------------------------------------------------
def _missing(reason: str) -> None:
    """Skip where a tool is missing, as the other emscripten tests do; under $CI that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required under $CI)")
    pytest.skip(reason)


def _need_node() -> None:
    if shutil.which("node") is None or not LOADER.exists():
        _missing("node or @permaweb/ao-loader missing (make install)")


def reference(path: str, messages, options: dict | None = None, mode: str = "memory") -> list[dict]:
    """The loader's answers (Memory passed per message, a failed message keeps the previous Memory and
    continues in a fresh instance, as AO's CU)."""
    return run_loader(path, FORMAT, messages, options=options, mode=mode, program=str(RUNNER))


def compare(inst, messages, ref) -> list:
    """Every message through `inst`, checked against the loader's line for it; returns our results."""
    assert len(ref) == len(messages)
    outs = []
    for i, ((msg, env), r) in enumerate(zip(messages, ref)):
        res = inst.handle(msg, env)
        outs.append(res)
        if "thrown" in r:                          # ok=false, a trap, out of gas: the loader throws
            assert res.error == r["thrown"], i
        else:
            result_is_loaders(res, r, i)
        assert {"length": inst.memory_size(), "sha256": inst.memory_hash()} == r["memory"], i
    return outs


@pytest.fixture(scope="session")
def wat_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("wasm64") / "glue64.wasm"
    path.write_bytes(wat_module())
    return str(path)


WAT_SEQUENCE = [_msg(n, data=d) for n, d in enumerate("acfcjecdchc")]
A_OUTPUT = ("w=12 env=0 envsize=0 heapmax=17179869184 mono=1 tz=0 dl=0 std=UTC dst=UTC gmtoff=0 pad=-1 isdst=0 "
            "n=47 Fri Jan 01 00:00:00 1971|UTC|+0000|001|01/01/71 small=0 mktime=1700000000 wday=2 yday=317 "
            "mkdst=0 gy=69 gh=23 gyday=364 gy2=206 mc=copied sys0=0 sys=-52 cwdret=2 cwd=/ cwdsmall=-68 fdst=0 "
            "type=2 b1=255 flags=0 rights=0 fdbad=8 winsz=0 rows=24 cols=80 winsz2=0 w2=-1 tcgets=0 "
            "lflag=35387 cc1=28 ioctlbad=-28 fionbio=-59 getlk=0 ltype=2 getlk64=-28 getfl=1 gas>5e9=1 ")
F_OUTPUT = ("fd=3 wr=0 n=10 seek=0 pos=3 rd=0 nr=5 a=34 b=567 st=0 nlink=1 size=10 blksize=4096 blocks=1 uid=0 "
            "tail=-1 trunc=0 st2=0 size2=4 fchmod=0 chmod=0 chmodnf=-44 close=0 badfd=-8 ")


def _wat_checks(outs) -> None:
    """What each operation must give (the loader gives the same: see the comparison tests)."""
    out = [r.output for r in outs]
    assert out[0] == A_OUTPUT and outs[0].gas_used > 5_000_000_000          # an i64 usegas amount
    assert out[1] == "date=10006 now=10007 date2=10008 "   # 10,000 + FS.init's 3 + /data, fd_write's 2 iovecs
    assert out[2] == F_OUTPUT
    assert out[3] == "date=10014 now=10015 date2=10016 "   # + the file's node, write, truncate, 2 chmods
    assert out[4] == "threw=0 spdrop=96 a=7 threw2=1 spdrop2=64 a2=9 "
    assert outs[5].error == "failing on purpose"
    assert out[6] == "date=10004 now=10005 date2=10006 "   # the failed message's fresh instance
    assert out[7] == f"open=0 saved=11259375 sameargs=1 end={24 + ASYNCIFY_STACK_SIZE} start=24 id=0 state=0 "
    assert out[8] == "date=10007 now=10008 date2=10009 "
    assert out[9].startswith("mem=") and int(out[9].split()[0][4:]) > 8 << 20


def test_hand_written_module_on_aonet():
    """The 64-bit paths with literal expectations: runs wherever wasmtime does (no Node needed)."""
    inst = runtime().instantiate(wat_module(), format=FORMAT)
    _wat_checks([inst.handle(m, ENV) for m in WAT_SEQUENCE])


def test_hand_written_module_same_as_loader(wat_path):
    _need_node()
    messages = [(m, ENV) for m in WAT_SEQUENCE]
    ref = reference(wat_path, messages)
    outs = compare(runtime().instantiate(wat_module(), format=FORMAT), messages, ref)
    _wat_checks(outs)
    assert ref[7]["memory"]["length"] >= ref[6]["memory"]["length"] + ASYNCIFY_STACK_SIZE


def test_hand_written_module_out_of_gas_matches_loader(wat_path):
    _need_node()
    messages = [(m, ENV) for m in (_msg(0, data="a"), _msg(1, data="g"), _msg(2, data="c"), _msg(3, data="j"))]
    ref = reference(wat_path, messages, {"computeLimit": 6_000_000_000})
    assert ref[1] == {"thrown": "out of gas!", "memory": ref[0]["memory"]}
    outs = compare(runtime().instantiate(wat_module(), Limits(compute=6_000_000_000), format=FORMAT), messages, ref)
    assert outs[1].error == "out of gas!" and outs[2].output == "date=10004 now=10005 date2=10006 "


@pytest.mark.parametrize("tracking", [True, False], ids=["dirty-tracking", "full-copies"])
def test_hand_written_module_memory_passed_per_message(wat_path, tracking):
    """restore(image) + handle + snapshot_image() per message, including the Asyncify round trip
    (whose 40 MiB malloc grows the memory), and a fresh instance restored from an image."""
    _need_node()
    messages = [(m, ENV) for m in (_msg(0, data="a"), _msg(1, data="f"), _msg(2, data="d"), _msg(3, data="j"),
                                   _msg(4, data="h"))]
    ref = reference(wat_path, messages)
    inst = runtime(dirty_tracking=tracking).instantiate(wat_module(), format=FORMAT)
    images = images_match_loader(inst, messages, ref)
    fresh_instance_continues(runtime().instantiate(wat_module(), image=bytes(images[-2]), format=FORMAT), messages[-1],
                             ref[-1])


# -- the profile against the glue's source --------------------------------------------------------------
def _glue_source() -> str:
    src = (LOADER / "dist" / "index.cjs").read_text()
    start = src.index('"src/formats/wasm64-emscripten.cjs"(')
    return src[start:src.index("\n// ", start)]


def test_profile_is_what_the_wasm64_glue_does():
    """The facts WASM64 holds, read again from the loader's glue (so a loader update that changes
    them fails here, not silently)."""
    if not LOADER.exists():
        _missing("@permaweb/ao-loader missing (make install)")
    glue = _glue_source()
    block = glue[glue.index("var wasmImports = {"):]
    block = block[:block.index("};")]
    names = set(re.findall(r"^\s+(?:/\*\*.*?\*/\s*)?([A-Za-z_$][\w$]*)\s*[:,]", block, re.M))
    assert names == WASM64.provides | WASM64.invokes
    assert f"var getHeapMax = () => {WASM64.heap_max};" in glue
    assert f"StackSize: {ASYNCIFY_STACK_SIZE}," in glue and "_malloc(24 + Asyncify.StackSize)" in glue
    assert "HEAP32[(ptr + 16) / 4] = rewindId;" in glue and "saveOrRestoreRewindArguments(x, args)" in glue
    assert "return [];" in glue[glue.index("var getEnvStrings"):]                 # no environment
    assert "HEAPU64[timezone / 8]" in glue and "HEAP64[(tmPtr + 40) / 8]" in glue
    assert "Number(HEAPU64[(tm + 48) / 8])" in glue and "HEAP64[(buf + 96) / 8] = BigInt(stat.ino)" in glue
    assert "var ptr = Number(HEAPU64[iov / 8]);" in glue and "iov += 16;" in glue
    assert re.search(r"Date\.now = deterministicNow;.*\n\s+run\(\);", glue, re.S)
    assert glue.index("FS.staticInit();") < glue.index("Date.now = deterministicNow;")   # fs_clock "glue"
    for p in PROFILES.values():
        assert p.ptr64 == (p is WASM64)


# -- the emlua Lua process built for wasm64 (helper-19's build) -----------------------------------------
def _emlua64_module():
    try:
        from test_emscripten64_build import BUILD, _builder
    except ImportError:
        _missing("tests/test_emscripten64_build.py missing")
    if not BUILD.exists():
        _missing("tests/modules/emlua64/build.py missing")
    _need_node()
    if shutil.which("emcc") is None:
        _missing("emcc missing (make install installs Debian's emscripten)")
    path = _builder().build()
    return path.read_bytes(), str(path)


@pytest.fixture(scope="session")
def emlua64() -> tuple[bytes, str]:
    return _emlua64_module()


def _extra() -> list[dict]:
    from test_emscripten64_build import EXTRA
    return list(EXTRA)


def test_emlua64_same_results_memory_and_gas_as_ao_loader(emlua64):
    _need_node()
    data, path = emlua64
    messages = [(m, ENV) for m in SEQUENCE + _extra()]
    ref = reference(path, messages)
    outs = compare(runtime().instantiate(data, format=FORMAT), messages, ref)
    assert outs[2].output["data"] == "count 1"
    assert outs[3].messages[0]["Data"] == "pong héllo ✓ 𝄞"
    assert "failing on purpose" in outs[6].error and outs[7].output["data"] == "count 2"
    assert outs[9].output["data"] == "2023-11-14 22:13:20 Tuesday 318"
    assert ref[10]["memory"]["length"] > 6291456                       # the heap grew like the glue grows it


def test_emlua64_out_of_gas_and_rollback_match_loader(emlua64):
    _need_node()
    data, path = emlua64
    messages = [(SEQUENCE[0], ENV), (SEQUENCE[1], ENV), (_msg(20, "Eval", "while true do end"), ENV),
                (_msg(21, "Inc"), ENV)]
    ref = reference(path, messages, {"computeLimit": 2_000_000_000})
    assert ref[2] == {"thrown": "out of gas!", "memory": ref[1]["memory"]}
    outs = compare(runtime().instantiate(data, Limits(compute=2_000_000_000), format=FORMAT), messages, ref)
    assert outs[2].error == "out of gas!" and outs[3].output["data"] == "count 1"


@pytest.mark.parametrize("tracking", [True, False], ids=["dirty-tracking", "full-copies"])
def test_emlua64_memory_passed_per_message_matches_loader(emlua64, tracking):
    _need_node()
    data, path = emlua64
    messages = [(m, ENV) for m in SEQUENCE[:4] + [SEQUENCE[10], _msg(30, "Inc")]]
    ref = reference(path, messages)
    inst = runtime(dirty_tracking=tracking).instantiate(data, format=FORMAT)
    images = images_match_loader(inst, messages, ref)
    fresh_instance_continues(runtime().instantiate(data, image=bytes(images[-2]), format=FORMAT), messages[-1],
                             ref[-1])


# -- formats are not mixed up ---------------------------------------------------------------------------
_TINY32 = """(module (memory (export "memory") 1) (func (export "handle") (param i32 i32) (result i32) (i32.const 0))
  (func (export "emscripten_stack_get_current") (result i32) (i32.const 0))
  (func (export "_emscripten_stack_restore") (param i32)) (func (export "_emscripten_stack_alloc") (param i32) (result i32) (i32.const 0)))"""
_TINY64_BAD = """(module (memory (export "memory") i64 1) (func (export "handle") (param i32 i32) (result i32) (i32.const 0))
  (func (export "emscripten_stack_get_current") (result i64) (i64.const 0))
  (func (export "_emscripten_stack_restore") (param i64)) (func (export "_emscripten_stack_alloc") (param i64) (result i64) (i64.const 0)))"""


def test_formats_are_not_mixed_up():
    rt = runtime()
    with pytest.raises(VMError, match="64-bit memory: not a wasm32-unknown-emscripten4 module"):
        rt.instantiate(wat_module(), format=EMSCRIPTEN4.format)
    with pytest.raises(VMError, match="64-bit memory: not a wasm32-unknown-emscripten2 module"):
        rt.instantiate(wat_module())
    with pytest.raises(VMError, match=f"32-bit memory: not a {FORMAT} module"):
        rt.instantiate(wasmtime.wat2wasm(_TINY32), format=FORMAT)
    with pytest.raises(VMError, match=r"export handle has type \('i32', 'i32'\)"):
        rt.instantiate(wasmtime.wat2wasm(_TINY64_BAD), format=FORMAT)
    bad_import = wat_module().replace(b"invoke_vjj", b"invoke_vii")
    with pytest.raises(VMError, match="imports env.invoke_vii, which ao-loader's wasm64"):
        rt.instantiate(bad_import, format=FORMAT)


def test_cu_serves_wasm64(tmp_path):
    from aonet.cu.engine import default_runtimes
    runtimes = default_runtimes(str(tmp_path))
    assert isinstance(runtimes.get(FORMAT), EmscriptenRuntime)
    assert runtimes[FORMAT] is runtimes["wasm32-unknown-emscripten4"]
    assert runtimes["wasm64-unknown-emscripten-draft_2024_10_16-metering"] is runtimes[FORMAT]


# -- through the devnet: published, spawned, messages through the MU, results and /state from the CU ----
def test_wasm64_through_the_devnet(make_devnet, emlua64, tmp_path, capsys):  # noqa: F811
    """The CU serves the format: every stored result and the CU's memory are the loader's (on the
    messages the SU scheduled, mapped as the CU maps them), a failed message leaves no trace, and a
    restarted CU continues from its checkpoint. `module publish` detects the format by itself."""
    _need_node()
    from test_emscripten_devnet import ao_loader_round_trip, publish
    _, path = emlua64

    data_dir = tmp_path / "net"
    net = make_devnet(data_dir, modules=())
    published = publish(capsys, net, path)
    assert published["format"] == FORMAT
    ao_loader_round_trip(make_devnet, data_dir, net, published["module"], path, FORMAT)
