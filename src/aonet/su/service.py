"""The SU's stateful shell: turns verified items into log requests and awaits their commit.

Ordering lives in the log, not here: each request reaches the store's writer thread, which holds
the log's write lock, reads the process's head inside the transaction, and calls back into
`core` (through `build`) to compute, sign and insert the next slot. So one SU process, or several
SU workers sharing one log, give every process consecutive nonces and an unbroken hash chain; a
busy process's slots share one group commit; nothing is acknowledged before COMMIT.

Idempotency: a posted item already scheduled on the process returns its original assignment (the
log's unique (process, message) key finds it, even when the first post is in the same batch or came
through another worker), never a second nonce. Pushed-message dedup is the log's unique
(process, dedup hash) key.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ..ans104 import DataItem
from ..ans104.signers import ARWEAVE
from ..blocks import BlockClock, now_ms
from ..protocol import build_scheduler_location
from ..store.base import (AssignmentRecord, DuplicateDedup, Head, LoopBridge, NoProcess, ScheduleRequest,
                          ScheduleWrite, Store)
from . import core
from .fastcrypto import FastSigner

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
        self.signer = FastSigner(wallet)
        self.address: str = wallet.address
        self.block_clock = block_clock or BlockClock()
        self.clock = clock
        self._bridge: LoopBridge | None = None
        self.on_scheduled: Callable[[AssignmentRecord, float], None] | None = None
        # Slots are built (signed) ahead on the caller's thread when signing is cheap (Ed25519 ~15 us,
        # secp256k1 ~25 us); an RSA (Arweave) signature costs ~1.5 ms, so it is left to the log's
        # writer thread and the event loop keeps serving.
        self._build_ahead = wallet.signature_type != ARWEAVE if sign_in_thread is None else not sign_in_thread

    # ---- start-up --------------------------------------------------------------------------
    def publish_location(self, url: str, ttl_ms: int = 3_600_000) -> str:
        """Store this SU's Scheduler-Location record unless the newest one already says `url`."""
        page = self.store.query_items(owners=[self.address], tags=[("Type", ["Scheduler-Location"])], first=1)
        if page.items and page.items[0].item().tag("Url") == url:
            return page.items[0].id
        return self.store.put_item(build_scheduler_location(self.wallet, url, ttl_ms)).id

    # ---- scheduling ------------------------------------------------------------------------
    async def schedule_item(self, item: DataItem) -> Scheduled:
        """Schedule a verified Process or Message item (validated by `core.classify`)."""
        kind = core.classify(item, self.address)
        if kind == "Process":
            return await self._schedule(item.id, item.id, item=item, is_process=True)
        return await self._schedule(item.target_id, item.id, item=item, dedup=core.pushed_dedup_hash(item))

    async def assign(self, process_id: str, item_id: str, exclude: Sequence[str] = ()) -> Scheduled:
        """Assign an item already in the store to `process_id` (POST /?process-id=&assign=)."""
        core.check_id(process_id, "process-id")
        core.check_id(item_id, "assign")
        record = self.store.get_item(item_id)
        if record is None:
            raise core.NotFound(f"item {item_id} to assign is not in this SU's store")
        if record.type == "Assignment":
            raise core.BadRequest(f"item {item_id} is an Assignment: only messages and other data items can be "
                                  "assigned to a process")
        return await self._schedule(process_id, item_id, exclude=tuple(exclude), with_message=False)

    def _builder(self, process_id: str, item_id: str, item: DataItem | None, is_process: bool, dedup: str | None,
                 exclude: Sequence[str], with_message: bool) -> Callable[[Head | None], ScheduleWrite]:
        """What the log's writer calls, holding the write lock, with the process's current head."""
        signer, clock, heights = self.signer, self.clock, self.block_clock.height_at
        msg_id = None if is_process else item_id

        def build(head: Head | None) -> ScheduleWrite:
            now = clock()
            slot = core.next_slot(head, process_id, now, heights(now))
            assignment = core.build_assignment(signer, slot, msg_id, exclude=exclude, with_message=with_message)
            return ScheduleWrite(assignment, core.item_record(item, slot) if item is not None else None,
                                 core.process_record(item, slot) if is_process else None, dedup)
        return build

    async def _schedule(self, process_id: str, item_id: str, *, item: DataItem | None = None,
                        is_process: bool = False, dedup: str | None = None, exclude: Sequence[str] = (),
                        with_message: bool = True) -> Scheduled:
        t0 = time.perf_counter()
        bridge = self._bridge
        if bridge is None or bridge.loop is not asyncio.get_running_loop():
            bridge = self._bridge = LoopBridge(asyncio.get_running_loop())
        request = ScheduleRequest(process_id, item_id,
                                  self._builder(process_id, item_id, item, is_process, dedup, exclude, with_message),
                                  is_process, dedup, self._build_ahead)
        try:
            assignment, created = await bridge.wait(self.store.schedule(request))
        except NoProcess:
            raise core.UnknownProcess(f"process {process_id} is not scheduled by this SU") from None
        except DuplicateDedup as exc:
            raise core.DuplicatePush(f"pushed message {item_id} duplicates message {exc.message_id} already "
                                     f"scheduled on process {process_id}") from None
        if created and self.on_scheduled is not None:
            self.on_scheduled(assignment, time.perf_counter() - t0)
        return Scheduled(assignment, created)

    # ---- reads -----------------------------------------------------------------------------
    def head(self, process_id: str) -> Head | None:
        latest = self.store.latest_assignment(process_id)
        return None if latest is None else Head.of(latest)

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
