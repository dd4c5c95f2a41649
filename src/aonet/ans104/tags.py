"""Tags as ANS-104 writes them: an Avro array of {name: string, value: string} records.

Writers emit one block; readers accept any number of blocks, negative block counts included.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

from .errors import TagError

MAX_TAGS = 128
MAX_NAME_BYTES = 1024
MAX_VALUE_BYTES = 3072


class Tag(NamedTuple):
    name: str
    value: str

    def to_json(self) -> dict:
        return {"name": self.name, "value": self.value}


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise TagError("tag bytes end inside an Avro number")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise TagError("Avro number longer than 64 bits in tag bytes")
    return (result >> 1) ^ -(result & 1), pos


def _read_string(buf: bytes, pos: int, what: str) -> tuple[str, int]:
    n, pos = _read_long(buf, pos)
    if n < 0 or pos + n > len(buf):
        raise TagError(f"tag {what} length {n} runs past the tag bytes")
    try:
        return buf[pos:pos + n].decode("utf-8"), pos + n
    except UnicodeDecodeError as exc:
        raise TagError(f"tag {what} is not UTF-8") from exc


def normalize_tags(tags: Iterable) -> tuple[Tag, ...]:
    """Accept Tag, (name, value) or {"name", "value"}; every name and value must be a str."""
    out = []
    for t in tags:
        if isinstance(t, dict):
            try:
                name, value = t["name"], t["value"]
            except KeyError as exc:
                raise TagError(f"tag {t!r} needs 'name' and 'value'") from exc
        else:
            name, value = t
        if not isinstance(name, str) or not isinstance(value, str):
            raise TagError(f"tag name and value must be strings, got {name!r}: {value!r}")
        out.append(Tag(name, value))
    return tuple(out)


def check_limits(tags: tuple[Tag, ...]) -> None:
    if len(tags) > MAX_TAGS:
        raise TagError(f"{len(tags)} tags; ANS-104 allows at most {MAX_TAGS}")
    for t in tags:
        nb, vb = len(t.name.encode()), len(t.value.encode())
        if nb == 0:
            raise TagError("a tag name is empty")
        if nb > MAX_NAME_BYTES:
            raise TagError(f"tag name {t.name[:40]!r}… is {nb} bytes; at most {MAX_NAME_BYTES}")
        if vb > MAX_VALUE_BYTES:
            raise TagError(f"value of tag {t.name!r} is {vb} bytes; at most {MAX_VALUE_BYTES}")


def encode_tags(tags: Iterable) -> bytes:
    """Avro bytes for the tags; b'' for no tags (as arbundles writes)."""
    items = normalize_tags(tags)
    check_limits(items)
    if not items:
        return b""
    out = bytearray(_zigzag(len(items)))
    for name, value in items:
        for s in (name.encode(), value.encode()):
            out += _zigzag(len(s))
            out += s
    out.append(0)
    return bytes(out)


def decode_tags(buf: bytes) -> tuple[Tag, ...]:
    """Parse Avro tag bytes; the whole buffer must be consumed."""
    if not buf:
        return ()
    tags: list[Tag] = []
    pos = 0
    while True:
        count, pos = _read_long(buf, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = _read_long(buf, pos)  # block byte size, not needed
        if len(tags) + count > MAX_TAGS:
            raise TagError(f"more than {MAX_TAGS} tags")
        for _ in range(count):
            name, pos = _read_string(buf, pos, "name")
            value, pos = _read_string(buf, pos, "value")
            tags.append(Tag(name, value))
    if pos != len(buf):
        raise TagError(f"{len(buf) - pos} stray bytes after the Avro tag array")
    result = tuple(tags)
    check_limits(result)
    return result
