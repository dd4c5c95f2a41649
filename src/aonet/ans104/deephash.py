"""Arweave's deep hash (SHA-384 over nested blobs and lists): what a data item signs."""
from __future__ import annotations

import hashlib
from typing import Sequence, Union

Chunk = Union[bytes, Sequence["Chunk"]]


def deep_hash(chunk: Chunk) -> bytes:
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        data = bytes(chunk)
        tag = hashlib.sha384(b"blob" + str(len(data)).encode()).digest()
        return hashlib.sha384(tag + hashlib.sha384(data).digest()).digest()
    acc = hashlib.sha384(b"list" + str(len(chunk)).encode()).digest()
    for child in chunk:
        acc = hashlib.sha384(acc + deep_hash(child)).digest()
    return acc
