"""The log's interface: what the SU (and the local gateway) need from durable storage.

Rules every backend keeps (SQLite today, PostgreSQL next):
- **Durable before acknowledged.** A write's future resolves only after the transaction holding it
  has committed (and, for SQLite with synchronous=FULL, been fsynced). Callers answer clients only
  after that.
- **No gaps, no duplicates.** An assignment with nonce n > 0 commits only if nonce n-1 of the same
  process is already in the log (or earlier in the same transaction); (process, nonce),
  (process, message) and (process, dedup hash) are unique. A write that breaks a rule fails alone
  (`StoreConflict`), never the writes batched with it.
- **The log orders.** `schedule(request)` gives the request the slot after the process's head *as
  the log holds it when the slot commits*: a backend may call `request.build(head)` early on a
  predicted head (pipelining: signing overlaps the previous commit) but must check inside the
  write transaction that the head is exactly that one, and call `build` again on the real head
  when it is not. So several SU processes (workers) can share one log: the log, not an in-memory
  lock, decides each nonce. `build` must therefore be a pure function of the head (plus the clock
  and fresh randomness) that may run more than once, in any thread.
- **Items are immutable.** Storing an item id twice keeps the first copy (idempotent uploads).

Reads are synchronous and safe from any thread. Writes are submitted and resolve a
`concurrent.futures.Future`; `aio_wait` awaits one from asyncio cheaply (one loop wake-up per batch).
"""
from __future__ import annotations

import asyncio
import base64
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence, runtime_checkable

from ..ans104 import DataItem, parse


class StoreError(RuntimeError):
    """The log could not complete an operation (I/O error, closed store)."""


class StoreConflict(StoreError):
    """A write broke a log invariant: duplicate nonce/message/dedup hash, or a nonce gap."""


class NoProcess(StoreConflict):
    """A slot was requested on a process that has no slot 0 in the log."""


class DuplicateDedup(StoreConflict):
    """A pushed message whose dedup hash is already scheduled on the process (as `message_id`)."""

    def __init__(self, message: str, message_id: str):
        super().__init__(message)
        self.message_id = message_id


# ---- records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemRecord:
    """An item in the general items table (what the gateway serves)."""
    id: str
    raw: bytes = field(repr=False)
    owner: str                 # owner address
    target: str                # '' when absent
    type: str | None           # the `Type` tag
    height: int                # block height when stored
    timestamp: int             # ms when stored
    seq: int = 0               # store order (assigned by the store)
    tags: tuple | None = field(default=None, repr=False, compare=False)  # decoded tags, to skip a re-parse

    @property
    def cursor(self) -> str:
        return encode_cursor(self.height, self.seq)

    def item(self) -> DataItem:
        return parse(self.raw)

    @classmethod
    def of(cls, item: DataItem, *, height: int, timestamp: int) -> "ItemRecord":
        return cls(item.id, item.raw, item.owner_address, item.target_id, item.tag("Type") or item.tag("type"),
                   height, timestamp, 0, item.tags)


@dataclass(frozen=True)
class AssignmentRecord:
    """One scheduled slot of a process: the signed Assignment item plus its decoded fields."""
    id: str
    process_id: str
    nonce: int
    timestamp: int             # ms
    block_height: int
    hash_chain: str
    message_id: str            # the item assigned (the process id itself at nonce 0)
    with_message: bool         # False for `?assign=` of an existing item (the SU shows message: null)
    raw: bytes = field(repr=False)
    message_raw: bytes | None = field(default=None, repr=False)  # filled by reads that join the item

    def item(self) -> DataItem:
        return parse(self.raw)


@dataclass(frozen=True)
class ProcessRecord:
    id: str
    owner: str
    module: str
    scheduler: str
    timestamp: int             # ms of its nonce-0 assignment
    block_height: int
    raw: bytes | None = field(default=None, repr=False)  # the Process item (joined on read)


@dataclass(frozen=True)
class ScheduleWrite:
    """Everything one scheduling step writes, in one transaction."""
    assignment: AssignmentRecord
    item: ItemRecord | None = None        # the message/process item posted with it
    process: ProcessRecord | None = None  # when the item is a new Process
    dedup: str | None = None              # deep hash of a pushed message (From-Process), base64url


@dataclass(frozen=True)
class Head:
    """The last slot of a process: all the next slot depends on."""
    process_id: str
    nonce: int
    assignment_id: str
    hash_chain: str
    timestamp: int

    @classmethod
    def of(cls, a: AssignmentRecord) -> "Head":
        return cls(a.process_id, a.nonce, a.id, a.hash_chain, a.timestamp)


@dataclass(frozen=True)
class ScheduleRequest:
    """Give `message_id` the next slot of `process_id`, whatever the head is when the log writes it.

    The log calls `build(head)` (None: the process has no slot yet) for the slot's writes, either on
    the head it predicts (then checked inside the write transaction) or on the head it read there;
    `build` may run twice for one request. The future resolves to `(assignment, created)`:
    `created` False when `message_id` already had a slot on the process (that slot is returned;
    for `new_process`, when the process already has its slot 0). Refusals: `NoProcess` (a message
    to a process without slot 0), `DuplicateDedup` (pushed message already scheduled).
    """
    process_id: str
    message_id: str
    build: Callable[[Head | None], ScheduleWrite] = field(repr=False)
    new_process: bool = False
    dedup: str | None = None
    build_ahead: bool = True      # False: `build` is slow (RSA signing); call it only in the log's writer


@dataclass(frozen=True)
class ItemPage:
    items: list[ItemRecord]
    has_next_page: bool


# ---- cursors ---------------------------------------------------------------------------------
def encode_cursor(height: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{height}:{seq}".encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        height, seq = text.split(":")
        return int(height), int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor {cursor[:60]!r}") from exc


SORTS = ("HEIGHT_DESC", "HEIGHT_ASC")


# ---- the interface ---------------------------------------------------------------------------
@runtime_checkable
class Store(Protocol):
    # lifecycle
    def close(self) -> None: ...

    # writes (durable when the future resolves)
    def schedule(self, request: ScheduleRequest) -> Future:
        """The next slot for a message, decided by the log (see ScheduleRequest)."""
        ...

    def submit(self, write: ScheduleWrite) -> Future:
        """A pre-built slot (imports, tests): refused unless it extends the log's head."""
        ...

    def submit_item(self, record: ItemRecord) -> Future: ...
    def put_item(self, item: DataItem, *, height: int | None = None, timestamp: int | None = None) -> ItemRecord:
        """Store an item without scheduling it (uploads, Scheduler-Location); blocks until durable."""
        ...

    # items (gateway)
    def get_item(self, item_id: str) -> ItemRecord | None:
        """An item by id; assignments are found too (type 'Assignment')."""
        ...

    def query_items(self, *, ids: Sequence[str] | None = None, owners: Sequence[str] | None = None,
                    recipients: Sequence[str] | None = None,
                    tags: Sequence[tuple[str, Sequence[str]]] | None = None, first: int = 100,
                    after: str | None = None, sort: str = "HEIGHT_DESC") -> ItemPage: ...

    # schedule (SU)
    def get_process(self, process_id: str) -> ProcessRecord | None: ...
    def process_ids(self) -> list[str]: ...
    def latest_assignment(self, process_id: str) -> AssignmentRecord | None: ...
    def find_assignment(self, item_id: str, process_id: str | None = None, *,
                        by_assignment_id: bool = True) -> AssignmentRecord | None:
        """By message id (within `process_id` when given) or by assignment id; message joined."""
        ...

    def find_dedup(self, process_id: str, dedup: str) -> str | None:
        """The message id already scheduled on `process_id` with this pushed-message deep hash."""
        ...

    def list_assignments(self, process_id: str, *, from_timestamp: int | None = None,
                         to_timestamp: int | None = None, from_nonce: int | None = None,
                         to_nonce: int | None = None, limit: int = 100) -> list[AssignmentRecord]:
        """Ordered by nonce; from_* exclusive, to_* inclusive; messages joined."""
        ...

    def iter_assignments(self, process_id: str, batch: int = 1000) -> Iterator[AssignmentRecord]:
        """Every assignment of a process in nonce order, without messages (for verification)."""
        ...


# ---- asyncio bridge --------------------------------------------------------------------------
class LoopBridge:
    """Await store futures from one event loop with one wake-up per batch of completions.

    `asyncio.wrap_future` wakes the loop once per future; a group commit resolves hundreds at once,
    so we queue completions and schedule a single drain.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._done: deque[tuple[asyncio.Future, Future]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def wait(self, fut: Future) -> asyncio.Future:
        afut = self.loop.create_future()
        fut.add_done_callback(lambda f: self._completed(afut, f))
        return afut

    def _completed(self, afut: asyncio.Future, fut: Future) -> None:
        with self._lock:
            self._done.append((afut, fut))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # loop closed during shutdown
            pass

    def _drain(self) -> None:
        with self._lock:
            done, self._done = self._done, deque()
            self._scheduled = False
        for afut, fut in done:
            if afut.done():
                continue
            exc = fut.exception()
            if exc is not None:
                afut.set_exception(exc)
            else:
                afut.set_result(fut.result())
