"""The in-memory file system behind the emscripten host's syscalls (emscripten's MEMFS, simplified).

Why in the host: emscripten modules keep their files in the JavaScript glue, not in linear memory, so
a file lives as long as the instance (a restored memory image starts with the default tree again, as
it does under AO's loader). Errors are emscripten's errno numbers (WASI values); syscalls return
-errno, `fd_*` functions return errno. Times are the host's deterministic Date.now counter.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

S_IFMT, S_IFDIR, S_IFREG, S_IFCHR = 0o170000, 0o040000, 0o100000, 0o020000
O_ACCMODE, O_WRONLY, O_RDWR = 3, 1, 2
O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY = 0o100, 0o200, 0o1000, 0o2000, 0o200000

EPERM, ENOENT, EBADF, EEXIST, EINVAL, EISDIR, ENOTDIR, ENOTEMPTY, ENOTTY, ESPIPE, ENOSYS, EBUSY = (
    63, 44, 8, 20, 28, 31, 54, 55, 59, 70, 52, 10)
MAX_OPEN_FDS = 4096


class FSError(Exception):
    def __init__(self, errno: int):
        super().__init__(errno)
        self.errno = errno


@dataclass(eq=False)
class Node:
    mode: int
    ino: int
    time: int
    parent: "Node | None" = None
    name: str = ""
    children: dict[str, "Node"] | None = None
    data: bytearray | None = None
    device: str | None = None          # "tty", "null", "random"

    @property
    def is_dir(self) -> bool:
        return self.mode & S_IFMT == S_IFDIR


@dataclass(eq=False)
class Stream:
    node: Node
    path: str
    flags: int
    position: int = 0


@dataclass
class MemFS:
    """Default tree as emscripten creates it: /tmp, /home/web_user, /dev (null, tty, random, stdio), /proc."""
    now: Callable[[], int]
    stdout: bytearray = field(default_factory=bytearray)
    stdout_cap: int = 1 << 20
    # "host": every node, write and truncate reads the clock (as before). "glue": the Date.now calls of
    # the newer glues (read from the wasm64 glue): the static tree is made before the glue installs its
    # counter (FS.staticInit), so it reads no counter; FS.init's three std-stream symlinks read it once
    # each; /data (the loader's FS_createPath, after the module's constructors) is made by
    # add_loader_dirs(); a write reads it only when it writes bytes, on files and ttys alike.
    clock: str = "host"

    def __post_init__(self) -> None:
        self._ino = 0
        self.gen = 0          # bumped by anything that may change the tree or a stream (checkpoints compare it)
        glue = self.clock == "glue"
        now = self.now
        if glue:
            self.now = lambda: 0        # MEMFS stamps these with the wall clock: not reproducible anyway
        self.root = self._node(S_IFDIR | 0o777, None, "/")
        self.cwd = "/"
        for d in ("tmp", "home", "home/web_user", "dev", "dev/shm", "dev/shm/tmp", "proc", "proc/self",
                  "proc/self/fd", *(() if glue else ("data",))):
            self.mkdir("/" + d)
        for name, dev in (("null", "null"), ("tty", "tty"), ("tty1", "tty"), ("random", "random"),
                          ("urandom", "random"), ("stdin", "tty"), ("stdout", "tty"), ("stderr", "tty")):
            parent = self.lookup("/dev")
            node = self._node(S_IFCHR | 0o666, parent, name)
            node.device = dev
        if glue:
            self.now = now
            for name in ("stdin", "stdout", "stderr"):     # FS.createStandardStreams' symlinks
                self.lookup("/dev/" + name).time = self.now()
        self.streams: dict[int, Stream] = {}
        for fd, name, flags in ((0, "stdin", 0), (1, "stdout", O_WRONLY), (2, "stderr", O_WRONLY)):
            self.streams[fd] = Stream(self.lookup("/dev/" + name), "/dev/" + name, flags)

    def touch(self, node: Node, now: bool = True) -> None:
        """chmod/chown/utimes(NULL): MEMFS's setattr stamps the node with Date.now() ("glue" clock only;
        the "host" model reads no clock here)."""
        if self.clock == "glue" and now:
            self.gen += 1
            node.time = self.now()

    def add_loader_dirs(self) -> None:
        """/data, as the loader creates it after the glue's startup ("glue" clock only)."""
        if self.clock == "glue" and "data" not in self.root.children:
            self.mkdir("/data")

    def clone(self) -> "MemFS":
        """A deep copy sharing the clock (the clock belongs to the host, not to the tree)."""
        now, self.now = self.now, None
        try:
            twin = copy.deepcopy(self)
        finally:
            self.now = now
        twin.now = now
        return twin

    # -- tree -------------------------------------------------------------------------------------
    def _node(self, mode: int, parent: Node | None, name: str) -> Node:
        self.gen += 1
        self._ino += 1
        node = Node(mode, self._ino, self.now(), parent, name)
        if node.is_dir:
            node.children = {}
        elif mode & S_IFMT == S_IFREG:
            node.data = bytearray()
        if parent is not None:
            assert parent.children is not None
            parent.children[name] = node
            parent.time = node.time
        return node

    def resolve(self, path: str, dirpath: str | None = None) -> str:
        if not path.startswith("/"):
            path = (dirpath or self.cwd).rstrip("/") + "/" + path
        parts: list[str] = []
        for p in path.split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(p)
        return "/" + "/".join(parts)

    def lookup(self, path: str) -> Node:
        node = self.root
        for p in [p for p in path.split("/") if p]:
            if not node.is_dir:
                raise FSError(ENOTDIR)
            assert node.children is not None
            child = node.children.get(p)
            if child is None:
                raise FSError(ENOENT)
            node = child
        return node

    def _parent(self, path: str) -> tuple[Node, str]:
        path = self.resolve(path)
        if path == "/":
            raise FSError(EBUSY)
        head, name = path.rsplit("/", 1)
        parent = self.lookup(head or "/")
        if not parent.is_dir:
            raise FSError(ENOTDIR)
        return parent, name

    def path_of(self, node: Node) -> str:
        parts = []
        while node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    # -- operations -------------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int = 0o777) -> None:
        parent, name = self._parent(path)
        assert parent.children is not None
        if name in parent.children:
            raise FSError(EEXIST)
        self._node(S_IFDIR | (mode & 0o777), parent, name)

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        self.gen += 1
        path = self.resolve(path)
        try:
            node = self.lookup(path)
            if flags & O_CREAT and flags & O_EXCL:
                raise FSError(EEXIST)
        except FSError as exc:
            if exc.errno != ENOENT or not flags & O_CREAT:
                raise
            parent, name = self._parent(path)
            node = self._node(S_IFREG | (mode & 0o777), parent, name)
        if flags & O_DIRECTORY and not node.is_dir:
            raise FSError(ENOTDIR)
        if node.is_dir and flags & O_ACCMODE != 0:
            raise FSError(EISDIR)
        if flags & O_TRUNC and node.data is not None and flags & O_ACCMODE:
            node.data.clear()
            node.time = self.now()
        return self._add_stream(Stream(node, path, flags & ~(O_CREAT | O_EXCL | O_TRUNC)))

    def _add_stream(self, stream: Stream, lowest: int = 0) -> int:
        self.gen += 1
        for fd in range(lowest, MAX_OPEN_FDS):
            if fd not in self.streams:
                self.streams[fd] = stream
                return fd
        raise FSError(33)  # EMFILE

    def stream(self, fd: int) -> Stream:
        self.gen += 1
        s = self.streams.get(fd)
        if s is None:
            raise FSError(EBADF)
        return s

    def close(self, fd: int) -> None:
        self.stream(fd)
        del self.streams[fd]

    def dup(self, fd: int, lowest: int = 0) -> int:
        s = self.stream(fd)
        return self._add_stream(Stream(s.node, s.path, s.flags, s.position), lowest)

    def dup3(self, fd: int, newfd: int) -> int:
        self.gen += 1
        s = self.stream(fd)
        if fd == newfd:
            raise FSError(EINVAL)
        self.streams[newfd] = Stream(s.node, s.path, s.flags, s.position)
        return newfd

    def read(self, fd: int, n: int) -> bytes:
        s = self.stream(fd)
        if s.flags & O_ACCMODE == O_WRONLY:
            raise FSError(EBADF)
        node = s.node
        if node.is_dir:
            raise FSError(EISDIR)
        if node.device == "tty" or node.device == "null":
            return b""
        if node.device == "random":
            raise FSError(ENOSYS)    # no entropy in a deterministic process
        assert node.data is not None
        out = bytes(node.data[s.position:s.position + n])
        s.position += len(out)
        return out

    def write(self, fd: int, data: bytes) -> int:
        s = self.stream(fd)
        if s.flags & O_ACCMODE == 0:
            raise FSError(EBADF)
        node = s.node
        if node.is_dir:
            raise FSError(EISDIR)
        if node.device == "tty":
            room = self.stdout_cap - len(self.stdout)
            if room > 0:
                self.stdout += data[:room]
            if data and self.clock == "glue":
                node.time = self.now()
            return len(data)
        if node.device is not None:
            return len(data)
        assert node.data is not None
        if not data and self.clock == "glue":
            return 0
        if s.flags & O_APPEND:
            s.position = len(node.data)
        end = s.position + len(data)
        if end > len(node.data):
            node.data.extend(b"\0" * (end - len(node.data)))
        node.data[s.position:end] = data
        s.position = end
        node.time = self.now()
        return len(data)

    def seek(self, fd: int, offset: int, whence: int) -> int:
        s = self.stream(fd)
        if s.node.device == "tty":
            raise FSError(ESPIPE)
        size = len(s.node.data) if s.node.data is not None else 0
        base = {0: 0, 1: s.position, 2: size}.get(whence)
        if base is None or base + offset < 0:
            raise FSError(EINVAL)
        s.position = base + offset
        return s.position

    def truncate(self, fd: int, length: int) -> None:
        s = self.stream(fd)
        if s.node.data is None or length < 0:
            raise FSError(EINVAL)
        del s.node.data[length:]
        s.node.data.extend(b"\0" * (length - len(s.node.data)))
        s.node.time = self.now()

    def unlink(self, path: str) -> None:
        self.gen += 1
        parent, name = self._parent(path)
        assert parent.children is not None
        node = parent.children.get(name)
        if node is None:
            raise FSError(ENOENT)
        if node.is_dir:
            raise FSError(EPERM)
        del parent.children[name]
        parent.time = self.now()

    def rmdir(self, path: str) -> None:
        self.gen += 1
        parent, name = self._parent(path)
        assert parent.children is not None
        node = parent.children.get(name)
        if node is None:
            raise FSError(ENOENT)
        if not node.is_dir:
            raise FSError(ENOTDIR)
        if node.children:
            raise FSError(ENOTEMPTY)
        del parent.children[name]
        parent.time = self.now()

    def rename(self, old: str, new: str) -> None:
        self.gen += 1
        op, oname = self._parent(old)
        np, nname = self._parent(new)
        assert op.children is not None and np.children is not None
        node = op.children.get(oname)
        if node is None:
            raise FSError(ENOENT)
        target = np.children.get(nname)
        if target is not None and target.is_dir and target.children:
            raise FSError(ENOTEMPTY)
        del op.children[oname]
        node.parent, node.name = np, nname
        np.children[nname] = node
        op.time = np.time = self.now()

    def stat(self, node: Node) -> dict:
        size = len(node.data) if node.data is not None else (4096 if node.is_dir else 0)
        return {"dev": 1 if node.device else 2, "ino": node.ino, "mode": node.mode, "nlink": 1,
                "rdev": 0 if not node.device else 1, "size": size, "blocks": (size + 4095) // 4096,
                "time": node.time}
