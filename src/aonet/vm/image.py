"""An immutable memory image kept as pages, so images taken one after another share unchanged pages.

Why: passing a process's whole memory from message to message (AO's CU does this with its loader)
should cost what the message changed, not the size of the memory. `PagedImage.updated` makes the
next image from this one plus the written ranges (see dirty.py); `write_into` writes only the pages
that differ from an image the memory is known to hold. The value is the whole linear memory:
`bytes(image)` is exactly what `snapshot()` returns, and an old image never changes.
"""
from __future__ import annotations

import ctypes
import hashlib

from .dirty import PAGE

_ZERO = bytes(PAGE)


class PagedImage:
    """Linear memory bytes as a tuple of PAGE-sized bytes objects (shared between images).

    Either form is made from the other on demand and kept: `bytes(image)` joins the pages once, and an
    image made from bytes (`from_bytes`) splits into pages only if someone asks for them.
    """

    __slots__ = ("_pages", "_bytes", "_size", "__weakref__")

    def __init__(self, pages: tuple[bytes, ...] | None = None, data: bytes | None = None):
        if pages is None and data is None:
            raise ValueError("an image needs pages or bytes")
        self._pages = pages
        self._bytes = data
        self._size = len(pages) * PAGE if pages is not None else len(data)  # type: ignore[arg-type]

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> "PagedImage":
        data = bytes(data)
        if len(data) % PAGE:
            raise ValueError(f"an image is whole {PAGE}-byte pages, got {len(data)} bytes")
        return cls(data=data)

    @property
    def pages(self) -> tuple[bytes, ...]:
        if self._pages is None:
            d = self._bytes
            self._pages = tuple(d[i:i + PAGE] for i in range(0, len(d), PAGE))  # type: ignore[index,arg-type]
        return self._pages

    @classmethod
    def from_memory(cls, base: int, size: int) -> "PagedImage":
        string_at = ctypes.string_at
        return cls(tuple(string_at(base + off, PAGE) for off in range(0, size - size % PAGE, PAGE)))

    def updated(self, base: int, size: int, runs: list[tuple[int, int]]) -> "PagedImage":
        """This image with the byte ranges `runs` read again from memory at `base` (size >= len)."""
        if not runs and size == len(self):
            return self
        pages = list(self.pages)
        if size > len(self):
            pages.extend([_ZERO] * ((size - len(self)) // PAGE))
        string_at = ctypes.string_at
        for a, b in runs:
            for off in range(a, min(b, size), PAGE):
                pages[off // PAGE] = string_at(base + off, PAGE)
        return PagedImage(tuple(pages))

    def padded(self, size: int) -> "PagedImage":
        """This image followed by zero pages up to `size` bytes (memory grown past the image)."""
        if size <= len(self):
            return self
        return PagedImage(self.pages + (_ZERO,) * ((size - len(self)) // PAGE))

    # -- using ------------------------------------------------------------------------------------
    def write_into(self, base: int, known: "PagedImage | None" = None) -> int:
        """Copy this image to memory at `base`; with `known` (what the memory holds now), only the pages
        that are not the very same objects. Returns the bytes written."""
        memmove = ctypes.memmove
        if known is None and self._bytes is not None:
            memmove(base, self._bytes, len(self))
            return len(self)
        other = known.pages if known is not None else ()
        n = 0
        for i, page in enumerate(self.pages):
            if i >= len(other) or page is not other[i]:
                memmove(base + i * PAGE, page, PAGE)
                n += PAGE
        return n

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        if self._bytes is None:
            self._bytes = b"".join(self._pages)  # type: ignore[arg-type]
        return self._bytes

    tobytes = __bytes__

    def sha256(self) -> str:
        if self._bytes is not None:
            return hashlib.sha256(self._bytes).hexdigest()
        h = hashlib.sha256()
        for p in self._pages:  # type: ignore[union-attr]
            h.update(p)
        return h.hexdigest()

    def __eq__(self, other) -> bool:
        if isinstance(other, PagedImage):
            if self._pages is None or other._pages is None:
                return bytes(self) == bytes(other)
            return len(self.pages) == len(other.pages) and all(
                a is b or a == b for a, b in zip(self.pages, other.pages))
        if isinstance(other, (bytes, bytearray, memoryview)):
            return bytes(self) == bytes(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PagedImage({len(self)} bytes)"
