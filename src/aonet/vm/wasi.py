"""WASI preview 1 served by aonet itself, so that everything a module sees comes from the message.

Why not wasmtime's WASI: its clock, random and files read the host; here the clock is the message
Timestamp, random is a stream seeded from the message, and files are a read-only in-memory tree with
fixed metadata. Every CU that feeds the same messages therefore computes the same bytes.

Theory of operation: `WasiHost` holds the per-instance host state (fd table, captured stdout,
the current message's clock and random stream). `begin()` is called before each message: it closes
every file the module opened (so host state never outlives a message and linear memory stays the
whole process state) and reseeds the clock and random stream. The functions in `_FUNCS` implement
the calls; each takes the memory view and unsigned int arguments and returns a WASI errno. Pointer
and size arguments are i32 on wasm32 and i64 on wasm64; in-memory `size_t` fields (iovec, prestat,
nread, argv pointers) follow the pointer width. See docs/abi.md.
"""
from __future__ import annotations

import ctypes
import hashlib
import struct
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from ._fastcall import MemoryAccess, caller_context, memory_view, take_fuel

MODULE = "wasi_snapshot_preview1"

# errno (WASI preview 1 numbering)
SUCCESS, E2BIG, EACCES, EBADF, EEXIST, EFAULT, EINVAL, EIO, EISDIR = 0, 1, 2, 8, 20, 21, 28, 29, 31
ENAMETOOLONG, ENOENT, ENOSYS, ENOTDIR, ENOTEMPTY, ENOTSUP, EPERM, EROFS, ESPIPE, ENOTCAPABLE = (
    37, 44, 52, 54, 55, 58, 63, 69, 70, 76)
EOVERFLOW = 61

# filetypes
FT_UNKNOWN, FT_CHAR, FT_DIR, FT_FILE = 0, 2, 3, 4
# oflags, rights
O_CREAT, O_DIRECTORY, O_EXCL, O_TRUNC = 1, 2, 4, 8
R_FD_WRITE, R_FD_ALLOCATE, R_FD_FILESTAT_SET_SIZE = 1 << 6, 1 << 8, 1 << 22
_WRITE_RIGHTS = R_FD_WRITE | R_FD_ALLOCATE | R_FD_FILESTAT_SET_SIZE
_ALL_RIGHTS = (1 << 30) - 1
_READ_RIGHTS = _ALL_RIGHTS & ~_WRITE_RIGHTS

ROOT_FD = 3
CLOCK_RESOLUTION_NS = 1_000_000          # the message Timestamp has millisecond resolution
STDOUT_CAP = 1 << 20                      # captured bytes kept per message (the rest is dropped)
HOST_CALL_FUEL = 100                      # fuel per WASI call, plus 1 per byte it moves
_MAX_NS = (1 << 64) - 1
_MAX_MS = _MAX_NS // 1_000_000
_MAX_PATH = 4096


class Fault(Exception):
    """A pointer from the module is outside its memory: the call returns EFAULT."""


class OutOfFuel(Exception):
    """A WASI call cost more fuel than the message had left: the message traps like wasm code would."""


class ProcExit(Exception):
    """The module called proc_exit / proc_raise: the message traps (state restored)."""

    def __init__(self, code: int, what: str = "proc_exit"):
        super().__init__(f"{what}({code})")
        self.code = code
        self.what = what


class FileTree:
    """A read-only file tree in memory: '/a/b.py' -> bytes. Directories are implied by paths.

    Metadata is fixed (times 0, inode = rank of the path in sorted order), so nothing about the
    host leaks into a process.
    """

    def __init__(self, files: Mapping[str, bytes] | None = None):
        self.files: dict[str, bytes] = {}
        self.dirs: dict[str, list[str]] = {"": []}
        for raw_path, data in (files or {}).items():
            parts = [p for p in str(raw_path).split("/") if p not in ("", ".")]
            if not parts or ".." in parts:
                raise ValueError(f"bad path in file tree: {raw_path!r}")
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"file tree content for {raw_path!r} must be bytes")
            path = "/".join(parts)
            self.files[path] = bytes(data)
            for i in range(len(parts)):
                parent, child = "/".join(parts[:i]), parts[i]
                if parent in self.files:
                    raise ValueError(f"{parent!r} is both a file and a directory")
                kids = self.dirs.setdefault(parent, [])
                if child not in kids:
                    kids.append(child)
                if i < len(parts) - 1:
                    self.dirs.setdefault("/".join(parts[: i + 1]), [])
        for path in self.files:
            if path in self.dirs:
                raise ValueError(f"{path!r} is both a file and a directory")
        for kids in self.dirs.values():
            kids.sort()
        self.inodes = {p: i + 1 for i, p in enumerate(sorted([*self.dirs, *self.files]))}

    def kind(self, path: str) -> int:
        if path in self.files:
            return FT_FILE
        if path in self.dirs:
            return FT_DIR
        return FT_UNKNOWN


@dataclass
class _Open:
    path: str            # '' is the root
    kind: int            # FT_FILE / FT_DIR / FT_CHAR
    data: bytes = b""
    pos: int = 0
    preopen: bool = False


def _stdio() -> dict[int, _Open]:
    return {0: _Open("<stdin>", FT_CHAR), 1: _Open("<stdout>", FT_CHAR), 2: _Open("<stderr>", FT_CHAR),
            ROOT_FD: _Open("", FT_DIR, preopen=True)}


@dataclass
class RandomStream:
    """SHA-256 in counter mode: block i = sha256(seed || i as 8 bytes little endian)."""
    seed: bytes
    counter: int = 0
    buf: bytearray = field(default_factory=bytearray)

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += hashlib.sha256(self.seed + self.counter.to_bytes(8, "little")).digest()
            self.counter += 1
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def random_seed(msg: bytes, env: bytes) -> bytes:
    return hashlib.sha256(b"aonet-random-v1\0" + msg + b"\0" + env).digest()


class WasiHost:
    """The host side of one instance's WASI: fd table, captured output, clock and random."""

    def __init__(self, files: FileTree | None = None, environ: Iterable[str] = (), args: Iterable[str] = (),
                 ptr64: bool = False):
        self.tree = files or FileTree()
        self.environ = [e.encode() if isinstance(e, str) else bytes(e) for e in environ]
        self.args = [a.encode() if isinstance(a, str) else bytes(a) for a in args]
        self.psize = 8 if ptr64 else 4
        self._pfmt = "<Q" if ptr64 else "<I"
        self.fds: dict[int, _Open] = _stdio()
        self.stdout = bytearray()
        self.timestamp_ns = 0
        self._seed_parts: tuple[bytes, bytes] = (b"", b"")
        self._seed_terminated = False
        self._random: RandomStream | None = None
        self.error: BaseException | None = None     # why the last host call trapped
        self.memref = None                          # byref(the instance's wasmtime_memory_t)
        self._view = MemoryAccess()
        self.cost = 0                               # fuel the current WASI call has run up

    # -- per message ------------------------------------------------------------------------
    def begin(self, timestamp_ms: int, msg: bytes, env: bytes, *, terminated: bool = False) -> None:
        """Reset the host for one message: close files, clear output, set clock and random seed.

        `msg` and `env` are the exact bytes passed to handle; `terminated`: each still ends with the
        NUL the host wrote after it (not part of the seed)."""
        if len(self.fds) != 4:
            # Only path_open adds fds (closing one removes it); nothing changes the four base entries
            # (stdio and the preopen: seek/read on them is refused, so their pos stays 0).
            self.fds = _stdio()
        if self.stdout:
            self.stdout.clear()
        if type(timestamp_ms) is int and 0 <= timestamp_ms <= _MAX_MS:
            self.timestamp_ns = timestamp_ms * 1_000_000
        else:
            self.timestamp_ns = min(max(0, int(timestamp_ms)) * 1_000_000, _MAX_NS)
        self._seed_parts = (msg, env)
        self._seed_terminated = terminated
        self._random = None
        self.error = None

    def random(self, n: int) -> bytes:
        if self._random is None:   # seeded lazily: most messages never ask
            msg, env = self._seed_parts
            if self._seed_terminated:
                msg, env = msg[:-1], env[:-1]
            self._random = RandomStream(random_seed(msg, env))
        return self._random.read(n)

    # -- memory -------------------------------------------------------------------------------
    def mem(self, caller) -> MemoryAccess:
        if self.memref is None:
            raise Fault("memory not attached")
        return memory_view(caller_context(caller), self.memref, self._view)

    def bind(self) -> dict[str, Callable]:
        """name -> impl(caller, args) for define_host_func."""
        out = {}
        for name, fn in _FUNCS.items():
            out[name] = _bound(self, fn)
        return out


def _bound(host: WasiHost, fn):
    def impl(caller, args):
        host.cost = HOST_CALL_FUEL
        try:
            errno = fn(host, host.mem(caller), *args)
        except Fault:
            errno = EFAULT
        if not take_fuel(caller_context(caller), host.cost):
            raise OutOfFuel(fn.__name__)
        return errno
    return impl


def unsupported(name: str):
    def impl(_caller, _args):
        return ENOSYS
    return impl


# -- memory helpers ------------------------------------------------------------------------------
def _check(m: MemoryAccess, ptr: int, n: int) -> int:
    if n < 0 or ptr + n > m.size:
        raise Fault(f"{ptr}+{n} outside memory of {m.size}")
    return m.base + ptr


def _read(m: MemoryAccess, ptr: int, n: int) -> bytes:
    return ctypes.string_at(_check(m, ptr, n), n) if n else b""


def _write(m: MemoryAccess, ptr: int, data: bytes) -> None:
    if data:
        ctypes.memmove(_check(m, ptr, len(data)), data, len(data))


def _put(m: MemoryAccess, ptr: int, fmt: str, *vals) -> None:
    _write(m, ptr, struct.pack(fmt, *vals))


def _put_size(h: WasiHost, m: MemoryAccess, ptr: int, val: int) -> None:
    _write(m, ptr, struct.pack(h._pfmt, val))


def _iovecs(h: WasiHost, m: MemoryAccess, iovs: int, n: int) -> list[tuple[int, int]]:
    ps = h.psize
    raw = _read(m, iovs, n * 2 * ps)
    fmt = "<%d%s" % (2 * n, "Q" if ps == 8 else "I")
    vals = struct.unpack(fmt, raw)
    return [(vals[2 * i], vals[2 * i + 1]) for i in range(n)]


def _path(h: WasiHost, m: MemoryAccess, dirfd: int, ptr: int, n: int) -> tuple[int, str]:
    """Resolve a path relative to an open directory: (errno, tree path)."""
    d = h.fds.get(dirfd)
    if d is None:
        return EBADF, ""
    if d.kind != FT_DIR:
        return ENOTDIR, ""
    if n > _MAX_PATH:
        return ENAMETOOLONG, ""
    try:
        rel = _read(m, ptr, n).decode("utf-8")
    except UnicodeDecodeError:
        return EINVAL, ""
    if rel.startswith("/") or "\0" in rel:
        return ENOTCAPABLE, ""
    parts: list[str] = [p for p in d.path.split("/") if p]
    for p in rel.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                return ENOTCAPABLE, ""
            parts.pop()
        else:
            parts.append(p)
    return SUCCESS, "/".join(parts)


def _filestat(h: WasiHost, m: MemoryAccess, out: int, path: str, kind: int, size: int) -> int:
    ino = h.tree.inodes.get(path, 0)
    # dev, ino, filetype(u8 + 7 pad), nlink, size, atim, mtim, ctim
    _put(m, out, "<QQB7xQQQQQ", 1, ino, kind, 1, size, 0, 0, 0)
    return SUCCESS


# -- the calls ------------------------------------------------------------------------------------
def args_sizes_get(h, m, argc, bufsize):
    _put_size(h, m, argc, len(h.args))
    _put_size(h, m, bufsize, sum(len(a) + 1 for a in h.args))
    return SUCCESS


def _strings_get(h, m, items, ptrs, buf):
    for i, s in enumerate(items):
        _put_size(h, m, ptrs + i * h.psize, buf)
        _write(m, buf, s + b"\0")
        buf += len(s) + 1
    return SUCCESS


def args_get(h, m, argv, buf):
    return _strings_get(h, m, h.args, argv, buf)


def environ_sizes_get(h, m, count, bufsize):
    _put_size(h, m, count, len(h.environ))
    _put_size(h, m, bufsize, sum(len(e) + 1 for e in h.environ))
    return SUCCESS


def environ_get(h, m, env, buf):
    return _strings_get(h, m, h.environ, env, buf)


def clock_res_get(h, m, clock_id, out):
    if clock_id > 3:
        return EINVAL
    _put(m, out, "<Q", CLOCK_RESOLUTION_NS)
    return SUCCESS


def clock_time_get(h, m, clock_id, _precision, out):
    if clock_id > 3:
        return EINVAL
    _put(m, out, "<Q", h.timestamp_ns)
    return SUCCESS


def random_get(h, m, buf, n):
    _check(m, buf, n)
    h.cost += n
    _write(m, buf, h.random(n))
    return SUCCESS


def fd_write(h, m, fd, iovs, n, nwritten):
    f = h.fds.get(fd)
    if f is None or fd not in (1, 2):
        return EBADF
    total = 0
    for ptr, ln in _iovecs(h, m, iovs, n):
        data = _read(m, ptr, ln)
        h.cost += ln
        room = STDOUT_CAP - len(h.stdout)
        if room > 0:
            h.stdout += data[:room]
        total += ln
    _put_size(h, m, nwritten, total)
    return SUCCESS


def fd_pwrite(h, m, fd, iovs, n, offset, nwritten):
    return EBADF if fd not in h.fds else ESPIPE if fd < 3 else EBADF


def _file(h, fd) -> tuple[int, _Open | None]:
    f = h.fds.get(fd)
    if f is None:
        return EBADF, None
    if f.kind == FT_DIR:
        return EISDIR, None
    return SUCCESS, f


def _read_into(h, m, iovs, n, data: bytes, pos: int) -> int:
    done = 0
    for ptr, ln in _iovecs(h, m, iovs, n):
        chunk = data[pos + done: pos + done + ln]
        _write(m, ptr, chunk)
        done += len(chunk)
        h.cost += len(chunk)
        if len(chunk) < ln:
            break
    return done


def fd_read(h, m, fd, iovs, n, nread):
    err, f = _file(h, fd)
    if err:
        return err
    if f.kind == FT_CHAR:
        if fd != 0:
            return EBADF
        _put_size(h, m, nread, 0)
        return SUCCESS
    done = _read_into(h, m, iovs, n, f.data, f.pos)
    f.pos += done
    _put_size(h, m, nread, done)
    return SUCCESS


def fd_pread(h, m, fd, iovs, n, offset, nread):
    err, f = _file(h, fd)
    if err:
        return err
    if f.kind == FT_CHAR:
        return ESPIPE
    done = _read_into(h, m, iovs, n, f.data, offset)
    _put_size(h, m, nread, done)
    return SUCCESS


def fd_seek(h, m, fd, offset, whence, out):
    err, f = _file(h, fd)
    if err:
        return EBADF if err == EISDIR else err
    if f.kind == FT_CHAR:
        return ESPIPE
    if offset >= 1 << 63:
        offset -= 1 << 64           # filedelta is signed
    base = {0: 0, 1: f.pos, 2: len(f.data)}.get(whence)
    if base is None:
        return EINVAL
    new = base + offset
    if new < 0:
        return EINVAL
    f.pos = new
    _put(m, out, "<Q", new)
    return SUCCESS


def fd_tell(h, m, fd, out):
    err, f = _file(h, fd)
    if err:
        return EBADF if err == EISDIR else err
    if f.kind == FT_CHAR:
        return ESPIPE
    _put(m, out, "<Q", f.pos)
    return SUCCESS


def fd_close(h, m, fd):
    if fd not in h.fds:
        return EBADF
    if fd > 2 and not h.fds[fd].preopen:
        del h.fds[fd]
    return SUCCESS


def fd_fdstat_get(h, m, fd, out):
    f = h.fds.get(fd)
    if f is None:
        return EBADF
    if f.kind == FT_CHAR:
        _put(m, out, "<BxHxxxxQQ", FT_CHAR, 0, (1 << 1) if fd == 0 else R_FD_WRITE, 0)
    elif f.kind == FT_DIR:
        _put(m, out, "<BxHxxxxQQ", FT_DIR, 0, _READ_RIGHTS, _ALL_RIGHTS)
    else:
        _put(m, out, "<BxHxxxxQQ", FT_FILE, 0, _READ_RIGHTS, 0)
    return SUCCESS


def fd_fdstat_set_flags(h, m, fd, flags):
    return EBADF if fd not in h.fds else ENOTSUP


def fd_fdstat_set_rights(h, m, fd, base, inheriting):
    return EBADF if fd not in h.fds else ENOTSUP


def fd_filestat_get(h, m, fd, out):
    f = h.fds.get(fd)
    if f is None:
        return EBADF
    return _filestat(h, m, out, f.path, f.kind, len(f.data))


def _readonly_fd(h, m, fd, *_):
    return EBADF if fd not in h.fds else EROFS


def _ok_fd(h, m, fd, *_):
    return EBADF if fd not in h.fds else SUCCESS


def fd_prestat_get(h, m, fd, out):
    f = h.fds.get(fd)
    if f is None or not f.preopen:
        return EBADF
    # tag u8 (0 = dir), then size_t name length (aligned to the pointer size)
    _write(m, out, bytes(h.psize))
    _put_size(h, m, out + h.psize, 1)
    return SUCCESS


def fd_prestat_dir_name(h, m, fd, buf, n):
    f = h.fds.get(fd)
    if f is None or not f.preopen:
        return EBADF
    if n < 1:
        return ENAMETOOLONG
    _write(m, buf, b"/")
    return SUCCESS


def fd_readdir(h, m, fd, buf, buf_len, cookie, used):
    f = h.fds.get(fd)
    if f is None:
        return EBADF
    if f.kind != FT_DIR:
        return ENOTDIR
    parent = f.path.rsplit("/", 1)[0] if "/" in f.path else ""
    entries = [(".", f.path), ("..", parent)] + [
        (n, f"{f.path}/{n}" if f.path else n) for n in h.tree.dirs.get(f.path, [])]
    out = bytearray()
    for i in range(cookie, len(entries)):
        if len(out) >= buf_len:
            break
        name, path = entries[i]
        nb = name.encode()
        out += struct.pack("<QQIB3x", i + 1, h.tree.inodes.get(path, 0), len(nb), h.tree.kind(path)) + nb
    out = out[:buf_len]
    h.cost += len(out)
    _check(m, buf, len(out))
    _write(m, buf, bytes(out))
    _put_size(h, m, used, len(out))
    return SUCCESS


def path_open(h, m, dirfd, _dirflags, path, path_len, oflags, rights_base, _rights_inh, fdflags, fd_out):
    err, p = _path(h, m, dirfd, path, path_len)
    if err:
        return err
    kind = h.tree.kind(p)
    if oflags & (O_CREAT | O_TRUNC | O_EXCL) or rights_base & _WRITE_RIGHTS or fdflags & 1:
        return EEXIST if (kind and oflags & O_CREAT and oflags & O_EXCL) else EROFS
    if kind == FT_UNKNOWN:
        return ENOENT
    if oflags & O_DIRECTORY and kind != FT_DIR:
        return ENOTDIR
    fd = 4
    while fd in h.fds:
        fd += 1
    h.fds[fd] = _Open(p, kind, h.tree.files.get(p, b""))
    _put(m, fd_out, "<I", fd)
    return SUCCESS


def path_filestat_get(h, m, dirfd, _flags, path, path_len, out):
    err, p = _path(h, m, dirfd, path, path_len)
    if err:
        return err
    kind = h.tree.kind(p)
    if kind == FT_UNKNOWN:
        return ENOENT
    return _filestat(h, m, out, p, kind, len(h.tree.files.get(p, b"")))


def path_readlink(h, m, dirfd, path, path_len, _buf, _buf_len, _used):
    err, p = _path(h, m, dirfd, path, path_len)
    if err:
        return err
    return EINVAL if h.tree.kind(p) else ENOENT


def _readonly_path(h, m, dirfd, *_):
    d = h.fds.get(dirfd)
    return EBADF if d is None else EROFS


def proc_exit(h, m, code):
    raise ProcExit(code)


def proc_raise(h, m, sig):
    raise ProcExit(sig, "proc_raise")


def sched_yield(h, m):
    return SUCCESS


def _nosys(h, m, *_):
    return ENOSYS


_FUNCS: dict[str, Callable[..., int]] = {
    "args_sizes_get": args_sizes_get, "args_get": args_get,
    "environ_sizes_get": environ_sizes_get, "environ_get": environ_get,
    "clock_res_get": clock_res_get, "clock_time_get": clock_time_get, "random_get": random_get,
    "fd_write": fd_write, "fd_pwrite": fd_pwrite, "fd_read": fd_read, "fd_pread": fd_pread,
    "fd_seek": fd_seek, "fd_tell": fd_tell, "fd_close": fd_close,
    "fd_fdstat_get": fd_fdstat_get, "fd_fdstat_set_flags": fd_fdstat_set_flags,
    "fd_fdstat_set_rights": fd_fdstat_set_rights, "fd_filestat_get": fd_filestat_get,
    "fd_filestat_set_size": _readonly_fd, "fd_filestat_set_times": _readonly_fd,
    "fd_allocate": _readonly_fd, "fd_advise": _ok_fd, "fd_sync": _ok_fd, "fd_datasync": _ok_fd,
    "fd_renumber": lambda h, m, a, b: ENOTSUP,
    "fd_prestat_get": fd_prestat_get, "fd_prestat_dir_name": fd_prestat_dir_name,
    "fd_readdir": fd_readdir, "path_open": path_open, "path_filestat_get": path_filestat_get,
    "path_readlink": path_readlink,
    "path_create_directory": _readonly_path, "path_remove_directory": _readonly_path,
    "path_unlink_file": _readonly_path, "path_rename": _readonly_path, "path_link": _readonly_path,
    "path_symlink": lambda h, m, *_: EROFS, "path_filestat_set_times": _readonly_path,
    "proc_exit": proc_exit, "proc_raise": proc_raise, "sched_yield": sched_yield,
    "poll_oneoff": _nosys, "sock_accept": _nosys, "sock_recv": _nosys, "sock_send": _nosys,
    "sock_shutdown": _nosys,
}

KNOWN = frozenset(_FUNCS)
