"""ANS-104 bundles: u256 count, then (u256 size, 32-byte id) per item, then the items."""
from __future__ import annotations

from typing import Sequence

from .dataitem import DataItem, parse
from .errors import ANS104Error, BundleError


def write_bundle(items: Sequence[DataItem]) -> bytes:
    header = [len(items).to_bytes(32, "little")]
    for item in items:
        header.append(len(item.raw).to_bytes(32, "little") + item.id_raw)
    return b"".join(header) + b"".join(item.raw for item in items)


def read_bundle(raw: bytes, *, verify: bool = True) -> list[DataItem]:
    """Parse a bundle body; every size and id must match and (by default) every signature verify."""
    if len(raw) < 32:
        raise BundleError("bundle shorter than its 32-byte item count")
    count = int.from_bytes(raw[:32], "little")
    header_end = 32 + 64 * count
    if count > (len(raw) - 32) // 64 or header_end > len(raw):
        raise BundleError(f"bundle header for {count} items runs past the end ({len(raw)} bytes)")
    items, pos = [], header_end
    for i in range(count):
        entry = raw[32 + 64 * i: 96 + 64 * i]
        size, want_id = int.from_bytes(entry[:32], "little"), entry[32:]
        if pos + size > len(raw):
            raise BundleError(f"item {i} declares {size} bytes but only {len(raw) - pos} remain")
        try:
            item = parse(raw[pos:pos + size], verify=verify)
        except ANS104Error as exc:
            raise BundleError(f"item {i} is invalid: {exc}") from exc
        if item.id_raw != want_id:
            raise BundleError(f"item {i}: header id does not match sha256 of its signature ({item.id})")
        items.append(item)
        pos += size
    if pos != len(raw):
        raise BundleError(f"{len(raw) - pos} bytes after the last bundled item")
    return items
