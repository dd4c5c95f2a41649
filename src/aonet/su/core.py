"""Scheduling as pure logic: which items an SU accepts, and the next slot of a process's chain.

Everything that decides an assignment lives here; nothing here touches a socket, a disk or a lock.
The shell (`su.service`) holds one `Head` per process and feeds this module (item, head, clock
reading); it gets back the exact Assignment item to persist.

Theory of operation (PROTOCOL.md §2 "Assignment", §3):
- A process's chain starts with the Process item itself at Nonce 0,
  `Hash-Chain = b64url(SHA-256(raw(process id)))`.
- Each next slot: `Nonce = prev + 1`,
  `Hash-Chain = b64url(SHA-256(raw(prev assignment id) || raw(prev Hash-Chain)))`, Epoch always 0,
  Timestamp = the SU clock in ms (never before the previous slot's), Block-Height = the block clock.
- The Assignment item: signed by the SU wallet, empty target, data "", a random 32-byte anchor,
  tags in AO's order: Process, Epoch, Nonce, Hash-Chain, Block-Height, Timestamp, Data-Protocol,
  Type, Variant, [Message], [Exclude...].
- Pushed messages (with From-Process) are de-duplicated by a deep hash of their content that leaves
  out the owner, the signature and `Pushed-For`: the same outbox message pushed twice (even signed
  twice) is scheduled once.

Every rule violation raises one `ScheduleError` subclass whose message names the broken rule; the
HTTP shell turns it into `{"error": ...}` with its `status`.
"""
from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Sequence

from ..ans104 import ANS104Error, DataItem, Tag, deep_hash, encode_tags, parse
from ..blocks import format_height
from ..encoding import b64url_decode, b64url_encode, id_bytes
from ..protocol import DATA_PROTOCOL, VARIANT, is_ao_item, item_type
from ..store.base import AssignmentRecord, Head, ItemRecord, ProcessRecord
from ..errors import StatusError
from . import fastcrypto

EPOCH = 0


# ---- errors ----------------------------------------------------------------------------------
class ScheduleError(StatusError, ValueError):
    """An item or request the SU refuses; `status` is the HTTP status the shell answers."""
    status = 400


class InvalidItem(ScheduleError):
    """Bytes that are not a valid ANS-104 data item, or whose signature does not verify."""


class NotAOItem(ScheduleError):
    """A valid data item that is not an AO Process or Message."""


class MissingTag(ScheduleError):
    """A Process without Module/Scheduler/Data-Protocol."""


class WrongScheduler(ScheduleError):
    """A Process whose Scheduler tag names another SU."""


class UnknownProcess(ScheduleError):
    """A Message or assignment to a process this SU does not schedule."""
    status = 404


class NotFound(ScheduleError):
    status = 404


class DuplicatePush(ScheduleError):
    """A pushed message whose content was already scheduled on this process under another id."""
    status = 409


class ItemTooLarge(ScheduleError):
    status = 413


class BadRequest(ScheduleError):
    """Bad query parameters."""


# ---- validation ------------------------------------------------------------------------------
def parse_item(raw: bytes) -> DataItem:
    """Decode and verify a posted item; every failure is an InvalidItem naming the cause."""
    if not raw:
        raise InvalidItem("empty body: POST / expects a binary ANS-104 data item")
    try:
        item = parse(raw)
    except ANS104Error as exc:
        raise InvalidItem(f"not a valid ANS-104 data item: {exc}") from None
    if not fastcrypto.verify_item(item):
        raise InvalidItem(f"invalid signature: data item {item.id} does not verify under its owner key")
    return item


def classify(item: DataItem, scheduler_address: str) -> str:
    """'Process' or 'Message' for an item this SU accepts; ScheduleError otherwise."""
    if not is_ao_item(item):
        raise NotAOItem(f"not an AO item: data item {item.id} lacks the tag Data-Protocol: {DATA_PROTOCOL}")
    kind = item_type(item)
    for t in item.tags:
        if t.name.endswith("+link"):
            raise NotAOItem(f"tag {t.name!r}: tags ending in '+link' are not accepted")
    if kind == "Process":
        for name in ("Module", "Scheduler"):
            if not item.tag(name):
                raise MissingTag(f"Process {item.id} has no {name} tag")
        if item.tag("Scheduler") != scheduler_address:
            raise WrongScheduler(f"Process {item.id} names Scheduler {item.tag('Scheduler')}; "
                                 f"this SU is {scheduler_address}")
        return "Process"
    if kind == "Message":
        if item.target is None:
            raise NotAOItem(f"Message {item.id} has no target process")
        return "Message"
    raise NotAOItem(f"Type {kind!r} of data item {item.id}: the SU schedules only Process and Message items"
                    if kind else f"data item {item.id} has no Type tag (want Process or Message)")


def check_id(value: str, what: str) -> str:
    try:
        id_bytes(value)
    except ValueError:
        raise BadRequest(f"{what} must be a 43-character base64url id, got {value[:60]!r}") from None
    return value


def pushed_dedup_hash(item: DataItem) -> str | None:
    """AO's dedup key for messages pushed by an MU (From-Process set); None for user messages."""
    if item.tag("From-Process") is None:
        return None
    tags = sorted((t for t in item.tags if t.name != "Pushed-For"), key=lambda t: (t.name, t.value))
    digest = deep_hash([b"dataitem", b"1", b"1", b"", item.target or b"", item.anchor or b"",
                        encode_tags(tags), item.data])
    return b64url_encode(digest)


# ---- the chain -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    process_id: str
    nonce: int
    hash_chain: str
    timestamp: int
    block_height: int
    epoch: int = EPOCH


def first_hash_chain(process_id: str) -> str:
    return b64url_encode(hashlib.sha256(id_bytes(process_id)).digest())


def next_hash_chain(prev_assignment_id: str, prev_hash_chain: str) -> str:
    return b64url_encode(hashlib.sha256(id_bytes(prev_assignment_id) + b64url_decode(prev_hash_chain)).digest())


def _next_hash_chain_fast(prev_assignment_id: str, prev_hash_chain: str) -> str:
    """`next_hash_chain` for values the SU wrote itself (43-char ids): no re-validation."""
    if len(prev_assignment_id) != 43 or len(prev_hash_chain) != 43:
        return next_hash_chain(prev_assignment_id, prev_hash_chain)
    digest = _sha256(_b64dec((prev_assignment_id + "=").encode()) + _b64dec((prev_hash_chain + "=").encode()))
    return _b64enc(digest.digest())[:43].decode()


def next_slot(head: Head | None, process_id: str, now_ms: int, block_height: int) -> Slot:
    """The slot after `head` (None: the process's own slot, nonce 0)."""
    if head is None:
        return Slot(process_id, 0, first_hash_chain(process_id), now_ms, block_height)
    if head.process_id != process_id:
        raise ValueError(f"head of {head.process_id} used for {process_id}")
    return Slot(process_id, head.nonce + 1, _next_hash_chain_fast(head.assignment_id, head.hash_chain),
                max(now_ms, head.timestamp), block_height)


def assignment_tags(slot: Slot, message_id: str | None, exclude: Sequence[str] = ()) -> list[Tag]:
    tags = [Tag("Process", slot.process_id), Tag("Epoch", str(slot.epoch)), Tag("Nonce", str(slot.nonce)),
            Tag("Hash-Chain", slot.hash_chain), Tag("Block-Height", format_height(slot.block_height)),
            Tag("Timestamp", str(slot.timestamp)), Tag("Data-Protocol", DATA_PROTOCOL),
            Tag("Type", "Assignment"), Tag("Variant", VARIANT)]
    if message_id is not None:
        tags.append(Tag("Message", message_id))
    tags += [Tag("Exclude", e) for e in exclude]
    return tags


def build_assignment(signer, slot: Slot, message_id: str | None, *, exclude: Sequence[str] = (),
                     with_message: bool = True, anchor: bytes | None = None) -> AssignmentRecord:
    """Sign the Assignment item for `slot`; `message_id` None for the process's own slot.

    `signer` is anything with `signature_type`, `owner` and `sign(message)` (a Wallet, a Signer or a
    `fastcrypto.FastSigner`). This runs once per message in the log's writer, so the tag bytes are
    assembled from pre-encoded pieces (same bytes as `encode_tags(assignment_tags(...))`).
    """
    if exclude or slot.epoch != EPOCH:
        tags = assignment_tags(slot, message_id, exclude)
        n_tags, tag_bytes = len(tags), _avro_tags(tags)
    else:
        n_tags, tag_bytes = _assignment_tag_bytes(slot, message_id)
    anchor = anchor if anchor is not None else _anchor()
    signature = signer.sign(fastcrypto.signing_message(signer.signature_type, signer.owner, None, anchor, tag_bytes,
                                                       b""))
    # the ANS-104 layout (see ans104.dataitem) written directly: no target, an anchor, no data
    raw = b"".join((_SIG_TYPE.get(signer.signature_type) or struct.pack("<H", signer.signature_type), signature,
                    signer.owner, b"\x00\x01", anchor, struct.pack("<QQ", n_tags, len(tag_bytes)), tag_bytes))
    return AssignmentRecord(_b64enc(_sha256(signature).digest())[:43].decode(), slot.process_id, slot.nonce,
                            slot.timestamp, slot.block_height, slot.hash_chain, message_id or slot.process_id,
                            with_message, raw)


_sha256 = hashlib.sha256
_b64enc = base64.urlsafe_b64encode
_b64dec = base64.urlsafe_b64decode
_SIG_TYPE = {t: struct.pack("<H", t) for t in range(1, 8)}
_anchors: list[bytes] = []
os.register_at_fork(after_in_child=_anchors.clear)      # a forked child must not reuse the parent's pool


def _anchor() -> bytes:
    """A random 32-byte anchor; urandom is read 4 KiB at a time (one syscall per 128 anchors)."""
    if not _anchors:
        pool = os.urandom(4096)
        _anchors.extend(pool[i:i + 32] for i in range(0, 4096, 32))
    return _anchors.pop()


def _avro_str(value: str) -> bytes:
    b = value.encode()
    n = len(b)
    return (_SMALL[n] if n < 64 else _zigzag(n)) + b


def _assignment_tag_bytes(slot: Slot, message_id: str | None) -> tuple[int, bytes]:
    """(count, Avro bytes) of `assignment_tags(slot, message_id)` without building Tag objects."""
    parts = [_A_HEAD_10 if message_id is not None else _A_HEAD_9, _avro_str(slot.process_id), _A_EPOCH,
             _avro_str(str(slot.nonce)), _A_HASH_CHAIN, _avro_str(slot.hash_chain), _A_HEIGHT,
             _avro_str(format_height(slot.block_height)), _A_TIMESTAMP, _avro_str(str(slot.timestamp)), _A_TAIL]
    if message_id is not None:
        parts += (_A_MESSAGE, _avro_str(message_id))
    parts.append(b"\x00")
    return (10 if message_id is not None else 9), b"".join(parts)


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes([n << 1]) for n in range(64)]      # zigzag of 0..63: one byte
_A_HEAD_9 = _SMALL[9] + _SMALL[7] + b"Process"
_A_HEAD_10 = _SMALL[10] + _SMALL[7] + b"Process"
_A_EPOCH = b"".join(_SMALL[len(x)] + x for x in (b"Epoch", str(EPOCH).encode(), b"Nonce"))
_A_HASH_CHAIN = _SMALL[10] + b"Hash-Chain"
_A_HEIGHT = _SMALL[12] + b"Block-Height"
_A_TIMESTAMP = _SMALL[9] + b"Timestamp"
_A_TAIL = b"".join(_SMALL[len(x)] + x for x in (b"Data-Protocol", DATA_PROTOCOL.encode(), b"Type", b"Assignment",
                                                 b"Variant", VARIANT.encode()))
_A_MESSAGE = _SMALL[7] + b"Message"


def _avro_tags(tags: Sequence[Tag]) -> bytes:
    """Avro tag bytes for the SU's own (known-valid) tags, without re-validation."""
    out = [_SMALL[len(tags)] if len(tags) < 64 else _zigzag(len(tags))]
    append = out.append
    for name, value in tags:
        for s in (name.encode(), value.encode()):
            n = len(s)
            append(_SMALL[n] if n < 64 else _zigzag(n))
            append(s)
    append(b"\x00")
    return b"".join(out)


def process_record(item: DataItem, slot: Slot) -> ProcessRecord:
    return ProcessRecord(item.id, item.owner_address, item.tag("Module") or "", item.tag("Scheduler") or "",
                         slot.timestamp, slot.block_height)


def item_record(item: DataItem, slot: Slot) -> ItemRecord:
    return ItemRecord.of(item, height=slot.block_height, timestamp=slot.timestamp)


def parse_exclude(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]
