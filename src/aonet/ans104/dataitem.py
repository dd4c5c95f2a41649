"""ANS-104 data items: the binary codec, the signed message, the id and verification.

Layout (little-endian): sig type u16 | signature | owner | target presence + 32 | anchor presence
+ 32 | tag count u64 | tag bytes length u64 | Avro tags | data. Every malformed input raises one
ANS104Error subclass whose message names the problem; nothing here does I/O.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

from ..encoding import b64url_encode
from .deephash import deep_hash
from .errors import ANS104Error, PresenceByteError, SignatureError, TagError, TruncatedError
from .signers import Signer, owner_address, sig_config, verify_signature
from .tags import Tag, decode_tags, encode_tags


@dataclass(frozen=True, eq=False)
class DataItem:
    signature_type: int
    signature: bytes
    owner: bytes
    target: bytes | None        # 32 raw bytes or None
    anchor: bytes | None        # 32 raw bytes or None
    tags: tuple[Tag, ...]
    data: bytes
    tag_bytes: bytes = field(repr=False)   # the Avro bytes exactly as signed

    # ---- identity -------------------------------------------------------------------------
    @cached_property
    def id_raw(self) -> bytes:
        return hashlib.sha256(self.signature).digest()

    @cached_property
    def id(self) -> str:
        return b64url_encode(self.id_raw)

    @cached_property
    def owner_address(self) -> str:
        return owner_address(self.signature_type, self.owner)

    @property
    def target_id(self) -> str:
        """The target as a base64url id, '' when absent."""
        return b64url_encode(self.target) if self.target else ""

    @property
    def anchor_text(self) -> str | None:
        """The anchor as AO's units show it: UTF-8 text, or None when absent or not UTF-8."""
        if self.anchor is None:
            return None
        try:
            return self.anchor.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def tag(self, name: str, default: str | None = None) -> str | None:
        """The first value of tag `name` (case-sensitive), as AO's units read tags."""
        for t in self.tags:
            if t.name == name:
                return t.value
        return default

    def tag_list(self) -> list[dict]:
        return [t.to_json() for t in self.tags]

    # ---- signing --------------------------------------------------------------------------
    def signing_message(self) -> bytes:
        return signing_message(self.signature_type, self.owner, self.target, self.anchor,
                               self.tag_bytes, self.data)

    def verify(self) -> bool:
        return verify_signature(self.signature_type, self.owner, self.signing_message(), self.signature)

    def check_signature(self) -> "DataItem":
        if not self.verify():
            raise SignatureError(f"signature of data item {self.id} does not verify "
                                 f"({sig_config(self.signature_type).name} key {self.owner_address})")
        return self

    # ---- codec ----------------------------------------------------------------------------
    @cached_property
    def raw(self) -> bytes:
        parts = [struct.pack("<H", self.signature_type), self.signature, self.owner]
        for opt in (self.target, self.anchor):
            parts.append(b"\x01" + opt if opt is not None else b"\x00")
        parts.append(struct.pack("<QQ", len(self.tags), len(self.tag_bytes)))
        parts += [self.tag_bytes, self.data]
        return b"".join(parts)

    def to_bytes(self) -> bytes:
        return self.raw

    @classmethod
    def parse(cls, raw: bytes, *, verify: bool = False) -> "DataItem":
        return parse(raw, verify=verify)

    @classmethod
    def create(cls, signer: Signer, data: bytes | str = b"", *, target: bytes | str | None = None,
               anchor: bytes | str | None = None, tags: Iterable = ()) -> "DataItem":
        return create(signer, data, target=target, anchor=anchor, tags=tags)


def signing_message(signature_type: int, owner: bytes, target: bytes | None, anchor: bytes | None,
                    tag_bytes: bytes, data: bytes) -> bytes:
    return deep_hash([b"dataitem", b"1", str(signature_type).encode(), owner, target or b"",
                      anchor or b"", tag_bytes, data])


def _take(raw: bytes, pos: int, n: int, what: str) -> tuple[bytes, int]:
    if pos + n > len(raw):
        raise TruncatedError(f"data item ends inside the {what} ({len(raw)} bytes, needs {pos + n})")
    return raw[pos:pos + n], pos + n


def parse(raw: bytes, *, verify: bool = False) -> DataItem:
    """Decode one binary data item; with verify=True also check its signature."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ANS104Error("a data item is bytes")
    raw = bytes(raw)
    head, pos = _take(raw, 0, 2, "signature type")
    sig_type = struct.unpack("<H", head)[0]
    cfg = sig_config(sig_type)
    signature, pos = _take(raw, pos, cfg.signature_length, "signature")
    owner, pos = _take(raw, pos, cfg.owner_length, "owner")
    fields: list[bytes | None] = []
    for what in ("target", "anchor"):
        flag, pos = _take(raw, pos, 1, f"{what} presence byte")
        if flag == b"\x00":
            fields.append(None)
        elif flag == b"\x01":
            value, pos = _take(raw, pos, 32, what)
            fields.append(value)
        else:
            raise PresenceByteError(f"{what} presence byte is {flag[0]}; ANS-104 allows only 0 or 1")
    counts, pos = _take(raw, pos, 16, "tag count and tag length")
    n_tags, n_tag_bytes = struct.unpack("<QQ", counts)
    if n_tag_bytes > len(raw) - pos:
        raise TagError(f"tag bytes length {n_tag_bytes} is larger than the {len(raw) - pos} bytes left")
    tag_bytes, pos = _take(raw, pos, n_tag_bytes, "tags")
    tags = decode_tags(tag_bytes)
    if len(tags) != n_tags:
        raise TagError(f"tag count header says {n_tags} but the tag bytes hold {len(tags)} tags")
    item = DataItem(sig_type, signature, owner, fields[0], fields[1], tags, raw[pos:], tag_bytes)
    item.__dict__["raw"] = raw
    if verify:
        item.check_signature()
    return item


def _fixed32(value: bytes | str | None, what: str) -> bytes | None:
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, str):
        from ..encoding import b64url_decode
        raw = b64url_decode(value) if what == "target" else value.encode()
    else:
        raw = bytes(value)
    if len(raw) != 32:
        raise ANS104Error(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def create(signer: Signer, data: bytes | str = b"", *, target: bytes | str | None = None,
           anchor: bytes | str | None = None, tags: Iterable = ()) -> DataItem:
    """Build and sign a data item. A str target is a base64url id; a str anchor is its UTF-8 bytes."""
    data_b = data.encode() if isinstance(data, str) else bytes(data)
    tgt, anc = _fixed32(target, "target"), _fixed32(anchor, "anchor")
    tag_bytes = encode_tags(tags)
    message = signing_message(signer.signature_type, signer.owner, tgt, anc, tag_bytes, data_b)
    signature = signer.sign(message)
    return DataItem(signer.signature_type, signature, signer.owner, tgt, anc, decode_tags(tag_bytes),
                    data_b, tag_bytes)
