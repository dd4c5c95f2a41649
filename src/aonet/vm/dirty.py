"""Which pages of a wasm linear memory were written since we last looked, from the kernel.

Why: handing a process's whole memory from message to message (as AO's CU does with its loader)
costs a copy of the full memory per message; a Lua process dirties ~25 of its 1,536 4-KiB pages per
message. The kernel can say which: the memory is registered with a userfaultfd in asynchronous
write-protect mode (a write just clears the page's protection, no fault reaches us), and the
PAGEMAP_SCAN ioctl on /proc/self/pagemap lists the written pages and protects them again, atomically.

Needs Linux >= 6.7 (UFFD_FEATURE_WP_ASYNC, PAGEMAP_SCAN) and permission to create a user-mode
userfaultfd. `DirtyTracker.open()` returns None where that is missing; callers then copy everything.
"""
from __future__ import annotations

import ctypes
import mmap
import os

PAGE = mmap.PAGESIZE

_SYS_userfaultfd = {"x86_64": 323, "aarch64": 282}.get(os.uname().machine)
_UFFD_USER_MODE_ONLY = 1
_UFFD_API = 0xAA
_UFFD_FEATURE_WP_UNPOPULATED = 1 << 13
_UFFD_FEATURE_WP_ASYNC = 1 << 15
_UFFDIO_API = 0xC018AA3F
_UFFDIO_REGISTER = 0xC020AA00
_UFFDIO_WRITEPROTECT = 0xC018AA06
_UFFDIO_REGISTER_MODE_WP = 1 << 1
_UFFDIO_WRITEPROTECT_MODE_WP = 1
_PAGEMAP_SCAN = 0xC0606610
_PM_SCAN_WP_MATCHING = 1 << 0
_PM_SCAN_CHECK_WPASYNC = 1 << 1
_PAGE_IS_WRITTEN = 1 << 1
_VEC = 1024                              # page_region entries per ioctl

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.ioctl.restype = ctypes.c_int
_libc.ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)

_shared: dict[str, object] = {}          # per OS process: {"pid", "uffd", "pagemap"} (a fork starts over)


def _ioctl(fd: int, req: int, buf) -> int:
    r = _libc.ioctl(fd, req, ctypes.addressof(buf))
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def _fds() -> tuple[int, int] | None:
    """The process-wide userfaultfd and pagemap descriptors, opened on first use (None: unsupported)."""
    if _shared.get("pid") == os.getpid():
        return _shared["fds"]                                         # type: ignore[return-value]
    fds = None
    if _SYS_userfaultfd is not None and os.environ.get("AONET_NO_DIRTY_TRACKING") in (None, "", "0"):
        uffd = _libc.syscall(_SYS_userfaultfd, os.O_CLOEXEC | os.O_NONBLOCK | _UFFD_USER_MODE_ONLY)
        if uffd >= 0:
            try:
                api = (ctypes.c_uint64 * 3)(_UFFD_API, _UFFD_FEATURE_WP_ASYNC | _UFFD_FEATURE_WP_UNPOPULATED, 0)
                _ioctl(uffd, _UFFDIO_API, api)
                pagemap = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
                fds = (uffd, pagemap)
            except OSError:
                os.close(uffd)
    _shared.update(pid=os.getpid(), fds=fds)
    return fds


class DirtyTracker:
    """Tracks one memory region [base, base+size) that may grow at its end."""

    def __init__(self, uffd: int, pagemap: int):
        self._uffd, self._pagemap = uffd, pagemap
        self.base = 0
        self.size = 0
        self._vec = (ctypes.c_uint64 * (3 * _VEC))()
        self._arg = (ctypes.c_uint64 * 12)()

    @classmethod
    def open(cls) -> "DirtyTracker | None":
        fds = _fds()
        if fds is None:
            return None
        tracker = cls(*fds)
        probe = mmap.mmap(-1, 2 * PAGE)                # check the whole path once, on scratch memory
        try:
            addr = ctypes.addressof(ctypes.c_char.from_buffer(probe))
            tracker.watch(addr, 2 * PAGE)
            probe[PAGE] = 1
            ok = tracker.take(addr, 2 * PAGE) == [(PAGE, 2 * PAGE)] and tracker.take(addr, 2 * PAGE) == []
        except OSError:
            ok = False
        finally:
            tracker.base = tracker.size = 0
            try:
                probe.close()
            except BufferError:
                pass
        return tracker if ok else None

    def watch(self, base: int, size: int) -> None:
        """Start over on [base, base+size): every page counts as clean from now on."""
        self.base, self.size = base, 0
        self._extend(size)

    def _extend(self, size: int) -> None:
        start, length = self.base + self.size, size - self.size
        if length > 0:
            _ioctl(self._uffd, _UFFDIO_REGISTER,
                   (ctypes.c_uint64 * 4)(start, length, _UFFDIO_REGISTER_MODE_WP, 0))
            _ioctl(self._uffd, _UFFDIO_WRITEPROTECT,
                   (ctypes.c_uint64 * 3)(start, length, _UFFDIO_WRITEPROTECT_MODE_WP))
            self.size = size

    def take(self, base: int, size: int) -> list[tuple[int, int]] | None:
        """Byte ranges (offsets from base) written since the last take/watch, now clean again.

        Growth at the end counts as written (and is watched from now on). None when the region moved
        or shrank, or the kernel refused: the caller must treat everything as written and watch again.
        """
        if base != self.base or size < self.size or not self.size:
            return None
        try:
            runs = self._scan()
            if size > self.size:
                old = self.size
                self._extend(size)
                runs.append((old, size))
        except OSError:
            self.size = 0
            return None
        return runs

    def _scan(self) -> list[tuple[int, int]]:
        runs: list[tuple[int, int]] = []
        start, end, vec, arg = self.base, self.base + self.size, self._vec, self._arg
        while start < end:
            arg[:] = (96, _PM_SCAN_WP_MATCHING | _PM_SCAN_CHECK_WPASYNC, start, end, 0, ctypes.addressof(vec),
                      _VEC, 0, 0, _PAGE_IS_WRITTEN, 0, _PAGE_IS_WRITTEN)
            n = _ioctl(self._pagemap, _PAGEMAP_SCAN, arg)
            base = self.base
            for i in range(n):
                a, b = vec[3 * i] - base, vec[3 * i + 1] - base
                if runs and runs[-1][1] == a:
                    runs[-1] = (runs[-1][0], b)
                else:
                    runs.append((a, b))
            walked = arg[4]
            if n < _VEC or walked >= end or walked <= start:
                break
            start = walked
        return runs


__all__ = ["DirtyTracker", "PAGE"]
