"""The SU's stateful shell: per-process heads and locks around the pure core, over a Store.

Concurrency: one asyncio.Lock per process guards that process's head; different processes never
wait for each other. Inside the lock we only compute the slot, sign and *enqueue* the write, then
move the head forward and release; the durable commit is awaited outside the lock, so many slots of
one process share one group commit. The store refuses a nonce whose predecessor is missing, so if a
commit fails every later slot chained on it fails too; any failure drops the cached head and the
next request reloads it from the log.

Idempotency: a posted item already scheduled on the process (committed or still pending) returns its
original assignment, never a second nonce.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ..ans104 import DataItem
from ..blocks import BlockClock, now_ms
from ..protocol import build_scheduler_location
from ..store.base import AssignmentRecord, LoopBridge, ScheduleWrite, Store, StoreConflict
from . import core
from .core import Head

log = logging.getLogger("aonet.su")


@dataclass(frozen=True)
class Scheduled:
    assignment: AssignmentRecord
    created: bool          # False when the item was already scheduled (idempotent re-post)


class SchedulerService:
    def __init__(self, store: Store, wallet, *, block_clock: BlockClock | None = None,
                 clock: Callable[[], int] = now_ms, sign_in_thread: bool | None = None):
        self.store = store
        self.wallet = wallet
        self.address: str = wallet.address
        self.block_clock = block_clock or BlockClock()
        self.clock = clock
        # RSA signing takes ~1.5 ms: move it off the event loop; Ed25519/secp256k1 are cheaper inline.
        self.sign_in_thread = (wallet.signature_type == 1) if sign_in_thread is None else sign_in_thread
        self._heads: dict[str, Head] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[tuple[str, str], tuple[asyncio.Future, AssignmentRecord]] = {}
        self._pending_dedup: dict[tuple[str, str], str] = {}
        self._bridge: LoopBridge | None = None
        self.on_scheduled: Callable[[AssignmentRecord, float], None] | None = None

    # ---- start-up --------------------------------------------------------------------------
    def publish_location(self, url: str, ttl_ms: int = 3_600_000) -> str:
        """Store this SU's Scheduler-Location record unless the newest one already says `url`."""
        page = self.store.query_items(owners=[self.address], tags=[("Type", ["Scheduler-Location"])], first=1)
        if page.items and page.items[0].item().tag("Url") == url:
            return page.items[0].id
        return self.store.put_item(build_scheduler_location(self.wallet, url, ttl_ms)).id

    # ---- heads -----------------------------------------------------------------------------
    def _lock(self, process_id: str) -> asyncio.Lock:
        lock = self._locks.get(process_id)
        if lock is None:
            lock = self._locks[process_id] = asyncio.Lock()
        return lock

    def _head(self, process_id: str) -> Head | None:
        head = self._heads.get(process_id)
        if head is None:
            latest = self.store.latest_assignment(process_id)
            if latest is not None:
                head = self._heads[process_id] = Head.of(latest)
        return head

    def _existing(self, process_id: str, item_id: str):
        """A pending future or committed assignment of `item_id` on `process_id`, else None."""
        pending = self._pending.get((process_id, item_id))
        if pending is not None:
            return pending
        return self.store.find_assignment(item_id, process_id, by_assignment_id=False)

    # ---- scheduling ------------------------------------------------------------------------
    async def schedule_item(self, item: DataItem) -> Scheduled:
        """Schedule a verified Process or Message item (validated by `core.classify`)."""
        kind = core.classify(item, self.address)
        if kind == "Process":
            return await self._schedule(item.id, item.id, item=item, is_process=True)
        pid = item.target_id
        return await self._schedule(pid, item.id, item=item, dedup=core.pushed_dedup_hash(item))

    async def assign(self, process_id: str, item_id: str, exclude: Sequence[str] = ()) -> Scheduled:
        """Assign an item already in the store to `process_id` (POST /?process-id=&assign=)."""
        core.check_id(process_id, "process-id")
        core.check_id(item_id, "assign")
        if self.store.get_item(item_id) is None:
            raise core.NotFound(f"item {item_id} to assign is not in this SU's store")
        return await self._schedule(process_id, item_id, exclude=exclude, with_message=False)

    async def _schedule(self, process_id: str, item_id: str, *, item: DataItem | None = None,
                        is_process: bool = False, dedup: str | None = None, exclude: Sequence[str] = (),
                        with_message: bool = True) -> Scheduled:
        t0 = time.perf_counter()
        if self._bridge is None:
            self._bridge = LoopBridge(asyncio.get_running_loop())
        key = (process_id, item_id)
        existing = None
        async with self._lock(process_id):
            head = self._head(process_id)
            if is_process and head is not None:       # already scheduled: answer its slot 0
                existing = self._existing(process_id, item_id)
                if existing is None:
                    raise StoreConflict(f"process {process_id} has a head but no slot 0 in the log")
            elif not is_process:
                if head is None:
                    raise core.UnknownProcess(f"process {process_id} is not scheduled by this SU")
                existing = self._existing(process_id, item_id)
                if existing is None and dedup is not None:
                    dup = self._pending_dedup.get((process_id, dedup)) or self.store.find_dedup(process_id, dedup)
                    if dup is not None:
                        raise core.DuplicatePush(f"pushed message {item_id} duplicates message {dup} already "
                                                 f"scheduled on process {process_id}")
            if existing is None:
                now = self.clock()
                slot = core.next_slot(head, process_id, now, self.block_clock.height_at(now))
                msg_id = None if is_process else item_id
                if self.sign_in_thread:
                    assignment = await asyncio.to_thread(core.build_assignment, self.wallet, slot, msg_id,
                                                         exclude=exclude, with_message=with_message)
                else:
                    assignment = core.build_assignment(self.wallet, slot, msg_id, exclude=exclude,
                                                       with_message=with_message)
                write = ScheduleWrite(assignment, core.item_record(item, slot) if item is not None else None,
                                      core.process_record(item, slot) if is_process else None, dedup)
                waiter = self._bridge.wait(self.store.submit(write))
                self._heads[process_id] = Head.of(assignment)
                self._pending[key] = (waiter, assignment)
                if dedup is not None:
                    self._pending_dedup[(process_id, dedup)] = item_id
        if existing is not None:
            return Scheduled(await self._resolve(existing), False)
        try:
            await asyncio.shield(waiter)
        except Exception:
            # the log refused or failed: forget what we assumed and reload from the log next time
            if self._heads.get(process_id) is not None and self._heads[process_id].nonce >= assignment.nonce:
                self._heads.pop(process_id, None)
            raise
        finally:
            self._pending.pop(key, None)
            if dedup is not None:
                self._pending_dedup.pop((process_id, dedup), None)
        if self.on_scheduled is not None:
            self.on_scheduled(assignment, time.perf_counter() - t0)
        return Scheduled(assignment, True)

    @staticmethod
    async def _resolve(existing) -> AssignmentRecord:
        """A committed record as is; a pending one once its commit is durable (or its error)."""
        if isinstance(existing, AssignmentRecord):
            return existing
        waiter, assignment = existing
        await asyncio.shield(waiter)
        return assignment

    # ---- reads -----------------------------------------------------------------------------
    def head(self, process_id: str) -> Head | None:
        return self._head(process_id)

    def page(self, process_id: str, *, from_timestamp: int | None = None, to_timestamp: int | None = None,
             from_nonce: int | None = None, to_nonce: int | None = None,
             limit: int = 100) -> tuple[list[AssignmentRecord], bool]:
        """One page of the schedule and whether more follow.

        Timestamps are not unique (many slots share a millisecond) while the cursor is a timestamp
        and `from` is exclusive; so a page never ends inside a group of equal timestamps: a cut
        group is dropped to the next page, or, when it fills the whole page, completed in this one.
        """
        by_nonce = from_nonce is not None or to_nonce is not None
        rows = self.store.list_assignments(process_id, from_timestamp=from_timestamp, to_timestamp=to_timestamp,
                                           from_nonce=from_nonce, to_nonce=to_nonce, limit=limit + 1)
        if len(rows) <= limit:
            return rows, False
        page, nxt = rows[:limit], rows[limit]
        if by_nonce or nxt.timestamp != page[-1].timestamp:
            return page, True
        ts = page[-1].timestamp
        kept = [a for a in page if a.timestamp != ts]
        if kept:
            return kept, True
        group = self.store.list_assignments(process_id, from_nonce=page[-1].nonce, to_timestamp=ts,
                                            limit=1_000_000)
        page += group
        more = self.store.list_assignments(process_id, from_nonce=page[-1].nonce, to_timestamp=to_timestamp,
                                           limit=1)
        return page, bool(more)
