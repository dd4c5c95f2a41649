"""The embedded log: SQLite in WAL mode with one writer thread doing group commits.

Durability: `synchronous=FULL` by default. In WAL mode FULL fsyncs the WAL on every COMMIT, so an
acknowledged write survives a process crash *and* an OS crash or power loss. NORMAL (opt-in) fsyncs
only at checkpoints: it survives a process crash (SIGKILL) but the last commits may roll back on a
power loss, which would break "durable before acknowledged". Group commit makes FULL affordable: the
writer takes every write queued while the previous COMMIT was syncing and commits them together, so
one fsync covers hundreds of acknowledgements.

The writer orders: a `ScheduleRequest` gets its slot from the head read inside the transaction
(cached while `PRAGMA data_version` says no other connection wrote), so several SU processes can
share one log; an flock hands the write lock between them. Requests need no savepoint (INSERT OR
IGNORE, then find out which key was taken); a pre-built `ScheduleWrite` runs in its own SAVEPOINT.
Either way a write that breaks an invariant (duplicate, nonce gap) fails alone with `StoreConflict`;
the others commit. Reads use one connection per thread (WAL readers never block the writer).
"""
from __future__ import annotations

import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator, Sequence

from ..ans104 import DataItem, parse
from ..blocks import BlockClock, now_ms
from .base import (SORTS, AssignmentRecord, DuplicateDedup, Head, ItemPage, ItemRecord, NoProcess, ProcessRecord,
                   ScheduleRequest, ScheduleWrite, StoreConflict, StoreError, decode_cursor)

log = logging.getLogger("aonet.store")

SCHEMA_VERSION = "4"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    target TEXT NOT NULL,
    type TEXT,
    height INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS items_height ON items(height, seq);
CREATE INDEX IF NOT EXISTS items_owner ON items(owner, height, seq);
CREATE INDEX IF NOT EXISTS items_target ON items(target, height, seq);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    item_seq INTEGER NOT NULL,
    PRIMARY KEY (name, value, item_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS processes (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    module TEXT NOT NULL,
    scheduler TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    block_height INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    id TEXT NOT NULL UNIQUE,
    process_id TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    block_height INTEGER NOT NULL,
    hash_chain TEXT NOT NULL,
    message_id TEXT NOT NULL,
    message_seq INTEGER NOT NULL,
    with_message INTEGER NOT NULL,
    dedup TEXT,
    raw BLOB NOT NULL,
    UNIQUE (process_id, nonce),
    UNIQUE (message_seq, process_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS assignments_dedup ON assignments(process_id, dedup) WHERE dedup IS NOT NULL;
"""
# Schema 2 (vs 1): (message_id, process_id) serves both the uniqueness rule and lookups by message
# alone, and the dedup key indexes only pushed messages: two fewer B-tree pages written per slot.
# Schema 3 (vs 2): no (process_id, timestamp) index; timestamps never decrease along a chain, so a
# timestamp bound becomes a nonce bound by binary search over (process_id, nonce) (see
# list_assignments): one B-tree page less written per slot. (Schema 4's migration rebuilds the
# assignments table of older logs without their extra indexes.)
# Schema 4 (vs 3): a slot names its message by the item's seq (`message_seq`, unique with the
# process) instead of by id: new messages get increasing seqs, so that key grows at its end (one page
# a commit) where (message_id, process_id) took a random page per slot; reads join items by rowid.
# Tags are one WITHOUT ROWID B-tree keyed (name, value, item_seq) instead of a table plus an index.
# Together about 10% fewer pages and CPU per group commit. Older logs are rebuilt once when opened
# (`_migrate`); a slot of a message that is not an item there (an assigned Assignment) gets
# -rowid, unique and never joined.

_A_COLS = ("a.id, a.process_id, a.nonce, a.timestamp, a.block_height, a.hash_chain, a.message_id, "
           "a.with_message, a.raw")
_A_JOIN = f"SELECT {_A_COLS}, i.raw FROM assignments a LEFT JOIN items i ON i.seq = a.message_seq AND a.with_message "
_I_COLS = "seq, id, raw, owner, target, type, height, timestamp"
_STOP = object()
_MAX_HEADS = 100_000
_IDLE_WAITS = 16            # batches without a group-commit wait after one that gained nothing
_QUIET_BATCHES = 4          # batches without another writer's commit before slots are built ahead
_INSERT_ASSIGNMENT = ("INSERT OR IGNORE INTO assignments (id, process_id, nonce, timestamp, block_height, hash_chain, "
                      "message_id, message_seq, with_message, dedup, raw) VALUES ")
_INSERT_BATCH = "INSERT INTO batch_rows VALUES "
_MAX_BATCH_ROWS = 2048      # 13 parameters a row: far below SQLite's 32766
_NO_TAGS = ("",) * 10       # a tag row's unused (name, value) pairs
_PADDING = [3] + [0] * 12   # a row no trigger takes
# Per writer connection (TEMP): the rows of a prebuilt batch, dispatched by kind k (0 assignment,
# 1 item, 2 up to five tags of an item, 3 padding). An assignment row carries the id of the
# assignment it was chained on (c11): refused unless that is exactly the log's slot nonce-1 of the
# process; c12 is its message's seq. No row binds a NULL (the sqlite3 module adapts None about 2.5x
# slower than a value, with the GIL held): '' stands for NULL (NULLIF) and for "no tag" (a tag name is
# never empty), padding is integers.
BATCH_SCHEMA = """
CREATE TEMP VIEW IF NOT EXISTS batch_rows (k, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12) AS
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;
CREATE TEMP TRIGGER IF NOT EXISTS batch_rows_assignment INSTEAD OF INSERT ON batch_rows WHEN NEW.k = 0 BEGIN
    SELECT RAISE(ABORT, 'aonet: slot does not extend the head it was built on') WHERE NOT EXISTS (
        SELECT 1 FROM assignments WHERE process_id = NEW.c2 AND nonce = NEW.c3 - 1 AND id = NEW.c11);
    INSERT INTO assignments (id, process_id, nonce, timestamp, block_height, hash_chain, message_id,
                             message_seq, with_message, dedup, raw)
        VALUES (NEW.c1, NEW.c2, NEW.c3, NEW.c4, NEW.c5, NEW.c6, NEW.c7, NEW.c12, NEW.c8, NULLIF(NEW.c9, ''), NEW.c10);
END;
CREATE TEMP TRIGGER IF NOT EXISTS batch_rows_item INSTEAD OF INSERT ON batch_rows WHEN NEW.k = 1 BEGIN
    INSERT INTO items (seq, id, owner, target, type, height, timestamp, raw)
        VALUES (NEW.c1, NEW.c2, NEW.c3, NEW.c4, NULLIF(NEW.c5, ''), NEW.c6, NEW.c7, NEW.c8);
END;
CREATE TEMP TRIGGER IF NOT EXISTS batch_rows_tags INSTEAD OF INSERT ON batch_rows WHEN NEW.k = 2 BEGIN
    INSERT OR IGNORE INTO tags (item_seq, name, value)
        SELECT NEW.c1, n, v FROM (SELECT NEW.c2 AS n, NEW.c3 AS v UNION ALL SELECT NEW.c4, NEW.c5
                                  UNION ALL SELECT NEW.c6, NEW.c7 UNION ALL SELECT NEW.c8, NEW.c9
                                  UNION ALL SELECT NEW.c10, NEW.c11)
        WHERE n != '';
END;
"""


def _migrate(conn: sqlite3.Connection) -> None:
    """Rebuild a log of schema 1-3 as schema 4, in one transaction (see the schema notes above)."""
    cols = [r[1] for r in conn.execute("PRAGMA table_info(assignments)")]
    if not cols or "message_seq" in cols:
        return                                            # a new log, or already schema 4
    log.warning("migrating the log %s to schema %s (one-time rebuild of assignments and tags)",
                conn.execute("PRAGMA database_list").fetchone()[2], SCHEMA_VERSION)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE assignments RENAME TO assignments_old")
        conn.execute("ALTER TABLE tags RENAME TO tags_old")
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                                    "AND tbl_name IN ('assignments_old', 'tags_old')").fetchall():
            conn.execute(f'DROP INDEX "{name}"')         # named indexes would clash with the new ones
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO assignments (id, process_id, nonce, timestamp, block_height, hash_chain, message_id, "
                     "message_seq, with_message, dedup, raw) "
                     "SELECT o.id, o.process_id, o.nonce, o.timestamp, o.block_height, o.hash_chain, o.message_id, "
                     "coalesce((SELECT seq FROM items WHERE id = o.message_id), -o.rowid), o.with_message, o.dedup, "
                     "o.raw FROM assignments_old o ORDER BY o.rowid")
        conn.execute("INSERT OR IGNORE INTO tags (item_seq, name, value) SELECT item_seq, name, value FROM tags_old")
        conn.execute("DROP TABLE assignments_old")
        conn.execute("DROP TABLE tags_old")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _padded(n: int) -> int:
    """Row count rounded up to a power of two (at least 8): few distinct statements to prepare."""
    return max(8, 1 << (n - 1).bit_length())


_sql_cache: dict[tuple[str, int, int], str] = {}


def _values_sql(head: str, ncols: int, nrows: int) -> str:
    key = (head, ncols, nrows)
    sql = _sql_cache.get(key)
    if sql is None:
        row = "(" + ",".join("?" * ncols) + ")"
        sql = _sql_cache[key] = head + ",".join([row] * nrows)
    return sql


class _Op:
    """A queued ScheduleRequest and its speculative slot.

    `write` is the slot built ahead of the transaction on `base` (the head its process will have
    once every op queued before it commits); `head` is the head this op leaves: predicted at
    enqueue time, set to the truth by the writer (None: not known yet, nothing is built on it).
    """
    __slots__ = ("request", "base", "write", "head")

    def __init__(self, request: ScheduleRequest):
        self.request = request
        self.base: Head | None = None
        self.write: ScheduleWrite | None = None
        self.head: Head | None = None


def _assignment(row, message_raw: bytes | None = None) -> AssignmentRecord:
    return AssignmentRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]), bytes(row[8]),
                            message_raw)


def _item(row) -> ItemRecord:
    seq, id_, raw, owner, target, type_, height, ts = row
    return ItemRecord(id_, bytes(raw), owner, target, type_, height, ts, seq)


class SQLiteStore:
    """`Store` on one SQLite file. `SQLiteStore(path)`; `close()` drains pending writes first.

    `commit_window` (seconds, 0 = off) and `commit_min`: under concurrent load a batch of fewer than
    `commit_min` writes waits once for `commit_window` to gather more (see `_run_writer`).
    """

    def __init__(self, path: str | os.PathLike, *, synchronous: str = "FULL", block_clock: BlockClock | None = None,
                 max_batch: int = 2048, commit_window: float = 0.0005, commit_min: int = 8):
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, EXTRA or NORMAL, not {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous.upper()
        self.block_clock = block_clock or BlockClock()
        self.max_batch = max_batch
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self.commit_window = commit_window
        self.commit_min = commit_min
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.stats = {"batches": 0, "writes": 0, "max_batch": 0, "prebuilt": 0, "rebuilt": 0, "replayed": 0,
                      "write_seconds": 0.0, "commit_seconds": 0.0, "window_waits": 0}
        self._heads: dict[str, Head] = {}        # writer thread only; valid while data_version holds
        self._data_version: int | None = None
        self._next_seq: int | None = None         # items.seq of the next item (writer thread; like heads)
        # Speculation (see schedule): the last queued op of each process, the committed heads of
        # processes with nothing queued, and whether other writers were quiet lately.
        self._spec_lock = threading.Lock()
        self._spec: dict[str, _Op] = {}
        self._known: dict[str, Head] = {}
        self._quiet = 0
        # Several SU processes may write one log: an flock hands the write lock over as soon as it is
        # free (SQLite's busy handler would sleep 1, 2, 5, 10... ms); busy_timeout still covers others.
        self._lock_fd: int | None = os.open(str(self.path) + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._w = self._connect()
            _migrate(self._w)
            self._w.executescript(SCHEMA)
            self._w.executescript(BATCH_SCHEMA)
            self._w.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._writer = threading.Thread(target=self._run_writer, name="aonet-store-writer", daemon=True)
        self._writer.start()

    # ---- connections -----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA cache_size=-65536")           # 64 MiB: index pages stay cached
        conn.execute("PRAGMA wal_autocheckpoint=8192")     # fewer, larger checkpoints: hot pages copied once
        conn.execute("PRAGMA foreign_keys=OFF")
        return conn

    def _r(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        """Commit everything already submitted, then close every connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join()
        self._w.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        with self._readers_lock:
            for conn in self._readers:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:  # created in another thread; closed by GC there
                    pass
            self._readers.clear()

    def __enter__(self) -> "SQLiteStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- writes ----------------------------------------------------------------------------
    def _enqueue(self, op) -> Future:
        fut: Future = Future()
        if self._closed:
            fut.set_exception(StoreError("store is closed"))
            return fut
        self._queue.put((op, fut))
        return fut

    def submit(self, write: ScheduleWrite) -> Future:
        return self._enqueue(write)

    def submit_item(self, record: ItemRecord) -> Future:
        return self._enqueue(record)

    def put_item(self, item: DataItem, *, height: int | None = None, timestamp: int | None = None) -> ItemRecord:
        ts = now_ms() if timestamp is None else timestamp
        h = self.block_clock.height_at(ts) if height is None else height
        self.submit_item(ItemRecord.of(item, height=h, timestamp=ts)).result()
        return self.get_item(item.id) or ItemRecord.of(item, height=h, timestamp=ts)

    def schedule(self, request: ScheduleRequest) -> Future:
        """Queue a request, building its slot now when the head it will commit on can be predicted.

        Pipelining: the caller builds and signs the slot (on the predicted head: the last queued
        slot of the process, or its committed head) while the writer is committing earlier
        batches, so the writer's transaction is only SQL. The writer checks the prediction inside
        the transaction (the log's head must be exactly `base`) and rebuilds the slot when it is
        wrong: an earlier write failed or another SU worker wrote the process. Nothing is
        acknowledged before its own COMMIT either way.
        """
        fut: Future = Future()
        if self._closed:
            fut.set_exception(StoreError("store is closed"))
            return fut
        op = _Op(request)
        pid = request.process_id
        with self._spec_lock:
            last = self._spec.get(pid)
            base = last.head if last is not None else self._known.get(pid)
            if (base is not None and request.build_ahead and not request.new_process
                    and self._quiet >= _QUIET_BATCHES):
                try:
                    w = request.build(base)
                except Exception:                          # the writer rebuilds it and reports the error
                    w = None
                if w is not None:
                    a = w.assignment
                    op.base, op.write, op.head = base, w, Head(pid, a.nonce, a.id, a.hash_chain, a.timestamp)
            self._spec[pid] = op
            self._queue.put((op, fut))
        return fut

    def _run_writer(self) -> None:
        q, conn = self._queue, self._w
        window, enough = self.commit_window, self.commit_min
        stopping = False
        last = 0                  # size of the previous batch
        idle_waits = 0            # batches left before waiting is tried again after a wait that gained nothing
        while not stopping:
            first = q.get()
            if first is _STOP:
                break
            batch = [first]
            waited = False
            while len(batch) < self.max_batch:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    # Group-commit window: under heavy concurrent load (the previous batch was over
                    # half of `commit_min`) a small batch waits once, briefly, for more writes: one
                    # fsync and one pass over the hot index pages then serve more of them (less CPU
                    # per write, fewer wake-ups of the event loop, so more CPU and GIL for the loop).
                    # A wait that gained nothing (every client waits on this batch) turns waiting
                    # off for a while, so a lone or light client is not delayed.
                    if waited or not window or 2 * last <= enough or len(batch) >= enough or idle_waits:
                        break
                    waited = True
                    self.stats["window_waits"] += 1
                    time.sleep(window)
                    if q.empty():
                        idle_waits = _IDLE_WAITS
                    continue
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
            if idle_waits and not waited:
                idle_waits -= 1
            last = len(batch)
            self._commit_batch(conn, batch)

    def _commit_batch(self, conn: sqlite3.Connection, batch: list) -> None:
        """Commit a batch; each op's future resolves only after its transaction committed (fsynced)."""
        if self._quiet >= _QUIET_BATCHES and all(type(op) is _Op and op.write is not None for op, _ in batch):
            t_start = time.perf_counter()
            outcomes = self._commit_prebuilt(conn, batch)
            if outcomes is not None:
                self._finish(batch, outcomes, t_start, t_start)
                return
            self.stats["replayed"] += 1                   # a prediction or a key failed: row by row
        self._commit_rows(conn, batch)

    def _commit_prebuilt(self, conn: sqlite3.Connection, batch: list) -> list | None:
        """The fast path: slots built ahead on the right heads, written by ONE autocommit statement.

        Every row of the batch (assignments, items, tags) goes into the temporary view
        `batch_rows`, whose INSTEAD OF triggers insert them; the statement is its own transaction,
        so SQLite commits (and fsyncs) before it returns and the writer thread crosses the GIL
        once per batch instead of several times per write (each crossing waits for the event loop).
        The log still decides: the trigger refuses a slot whose predecessor in the log is not the
        assignment it was chained on, and the unique keys refuse duplicates; any refusal aborts the
        whole statement (nothing written) and returns None, for the row-by-row path to replay.
        """
        heads = self._heads
        rows: list[tuple] = []
        outcomes: list = []
        new_heads: dict[str, Head] = {}
        seq = self._next_seq
        if seq is None:
            seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM items").fetchone()[0]
        for op, _ in batch:
            r = op.request
            pid = r.process_id
            head = new_heads.get(pid) or self._head(conn, pid, heads)
            base = op.base
            if r.new_process or head is None or not (base is head or base == head):
                return None
            w = op.write
            a = w.assignment
            if w.process is not None or a.process_id != pid or a.nonce != head.nonce + 1:
                return None
            rec = w.item
            if rec is None:                               # `assign`: the item is in the log already
                stored = conn.execute("SELECT seq FROM items WHERE id=?", (a.message_id,)).fetchone()
                if stored is None:
                    return None                           # the row path refuses it
            rows.append((0, a.id, pid, a.nonce, a.timestamp, a.block_height, a.hash_chain, a.message_id,
                         a.with_message, w.dedup or "", a.raw, head.assignment_id,
                         seq if rec is not None else stored[0]))
            if rec is not None:
                rows.append((1, seq, rec.id, rec.owner, rec.target, rec.type or "", rec.height, rec.timestamp,
                             rec.raw, 0, 0, 0, 0))
                tags = rec.tags if rec.tags is not None else rec.item().tags
                for i in range(0, len(tags), 5):
                    flat = [v for t in tags[i:i + 5] for v in t]
                    rows.append((2, seq, *flat, *_NO_TAGS[len(flat):], 0))
                seq += 1
            new_heads[pid] = op.head
            outcomes.append((a, True))
        if len(rows) > _MAX_BATCH_ROWS:
            return None
        n = _padded(len(rows))
        params = [v for row in rows for v in row]
        if n > len(rows):
            params += _PADDING * (n - len(rows))
        try:
            conn.execute(_values_sql(_INSERT_BATCH, 13, n), params)
        except sqlite3.Error as exc:
            if conn.in_transaction:                       # never left open by a failed autocommit statement
                conn.execute("ROLLBACK")
            log.debug("prebuilt batch refused (%s): replaying row by row", exc)
            heads.clear()
            self._next_seq = None
            return None
        heads.update(new_heads)
        self._next_seq = seq
        self.stats["prebuilt"] += len(outcomes)
        return outcomes

    def _commit_rows(self, conn: sqlite3.Connection, batch: list) -> None:
        """One explicit transaction; heads read inside it; each write succeeds or fails alone."""
        heads = self._heads
        locked = False
        t_start = time.perf_counter()
        try:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)    # fair hand-off between SU workers
                locked = True
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:             # another connection wrote: heads may be stale
                heads.clear()
                self._next_seq = None
                with self._spec_lock:
                    self._known.clear()
                    self._quiet = 0                       # stop building ahead for a while
                self._data_version = version
            elif self._quiet < _QUIET_BATCHES:
                with self._spec_lock:
                    self._quiet += 1
            outcomes = self._apply_rows(conn, batch, heads)
            t_commit = time.perf_counter()
            conn.execute("COMMIT")
        except Exception as exc:  # I/O error, disk full: nothing in this batch is durable
            log.exception("store batch of %d writes failed", len(batch))
            heads.clear()
            self._next_seq = None
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            err = StoreError(f"commit failed: {exc}")
            self._settle(batch, committed=False)
            for _, fut in batch:
                fut.set_exception(err)
            return
        finally:
            if locked:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._finish(batch, outcomes, t_start, t_commit)

    def _finish(self, batch: list, outcomes: list, t_start: float, t_commit: float) -> None:
        """After COMMIT: bookkeeping, then resolve every future of the batch."""
        t_end = time.perf_counter()
        if len(self._heads) > _MAX_HEADS:
            self._heads.clear()
        self._settle(batch, committed=True)
        stats = self.stats
        stats["batches"] += 1
        stats["writes"] += len(batch)
        stats["write_seconds"] += t_end - t_start
        stats["commit_seconds"] += t_end - t_commit
        if len(batch) > stats["max_batch"]:
            stats["max_batch"] = len(batch)
        for (_, fut), outcome in zip(batch, outcomes):
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

    def _apply_rows(self, conn: sqlite3.Connection, batch: list, heads: dict) -> list:
        """Each write on its own: one that breaks an invariant fails alone."""
        self._next_seq = None                             # items take their seq from SQLite here
        outcomes: list = []
        tag_rows: list[tuple] = []
        for op, _ in batch:
            try:
                if type(op) is _Op:
                    outcomes.append(self._apply_request(conn, op, heads, tag_rows))
                elif isinstance(op, ScheduleWrite):
                    outcomes.append(self._apply_write(conn, op, heads, tag_rows))
                else:
                    self._write_item(conn, op, tag_rows)
                    outcomes.append(None)
            except StoreConflict as exc:
                outcomes.append(exc)
            except sqlite3.IntegrityError as exc:
                outcomes.append(StoreConflict(str(exc)))
            except sqlite3.Error:
                raise
            except Exception as exc:                      # a request's own bug (build failed): it alone fails
                log.exception("store write failed")
                outcomes.append(StoreError(f"write failed: {type(exc).__name__}: {exc}"))
        if tag_rows:
            conn.executemany("INSERT OR IGNORE INTO tags (item_seq, name, value) VALUES (?,?,?)", tag_rows)
        return outcomes

    def _head(self, conn: sqlite3.Connection, process_id: str, heads: dict) -> Head | None:
        head = heads.get(process_id)
        if head is None:
            row = conn.execute("SELECT nonce, id, hash_chain, timestamp FROM assignments WHERE process_id=? "
                               "ORDER BY nonce DESC LIMIT 1", (process_id,)).fetchone()
            if row is not None:
                head = heads[process_id] = Head(process_id, row[0], row[1], row[2], row[3])
        return head

    def _settle(self, batch: list, committed: bool) -> None:
        """After COMMIT (or its failure): forget the batch's ops as the last queued ones of their
        processes; a committed op's head becomes the known head its process's next slot builds on."""
        with self._spec_lock:
            spec, known = self._spec, self._known
            for op, _ in batch:
                if isinstance(op, _Op):
                    pid = op.request.process_id
                    if spec.get(pid) is op:
                        del spec[pid]
                        if committed and op.head is not None:
                            known[pid] = op.head
                        else:
                            known.pop(pid, None)
                elif isinstance(op, ScheduleWrite):
                    known.pop(op.assignment.process_id, None)
            if len(known) > _MAX_HEADS:
                known.clear()

    def _apply_request(self, conn: sqlite3.Connection, op: _Op, heads: dict,
                       tag_rows: list) -> tuple[AssignmentRecord, bool]:
        r = op.request
        pid = r.process_id
        head = self._head(conn, pid, heads)
        try:
            return self._apply_on(conn, op, r, pid, head, heads, tag_rows)
        finally:
            truth = heads.get(pid)
            if op.head is not truth:
                with self._spec_lock:                     # what later slots of this process build on
                    op.head = truth

    def _apply_on(self, conn: sqlite3.Connection, op: _Op, r: ScheduleRequest, pid: str, head: Head | None,
                  heads: dict, tag_rows: list) -> tuple[AssignmentRecord, bool]:
        if r.new_process:
            if head is not None:                              # posted again: its slot 0
                row = conn.execute(f"SELECT {_A_COLS} FROM assignments a WHERE a.process_id=? AND a.nonce=0",
                                   (pid,)).fetchone()
                if row is None:
                    raise StoreConflict(f"process {pid} has slots but no nonce 0")
                return _assignment(row), False
        elif head is None:
            raise NoProcess(f"process {pid} is not in the log")
        w = op.write
        if w is not None and op.base == head:
            self.stats["prebuilt"] += 1
        else:
            if w is not None:
                self.stats["rebuilt"] += 1                # the prediction was wrong: build on the truth
            w = r.build(head)
        a = w.assignment
        if a.process_id != pid or a.nonce != (0 if head is None else head.nonce + 1):
            raise StoreConflict(f"request for {pid} built nonce {a.nonce} of {a.process_id} on head "
                                f"{None if head is None else head.nonce}")
        msg_seq, new_item = self._message_seq(conn, a.message_id, w.item)
        cur = conn.execute(_values_sql(_INSERT_ASSIGNMENT, 11, 1), (a.id, pid, a.nonce, a.timestamp, a.block_height,
                                                                    a.hash_chain, a.message_id, msg_seq,
                                                                    a.with_message, w.dedup, a.raw))
        if not cur.rowcount:                                  # a unique key is taken: find which
            row = conn.execute(f"SELECT {_A_COLS} FROM assignments a WHERE a.message_seq=? AND a.process_id=?",
                               (msg_seq, pid)).fetchone()
            if row is not None:
                return _assignment(row), False                # already scheduled: its original slot
            if w.dedup is not None:
                row = conn.execute("SELECT message_id FROM assignments WHERE process_id=? AND dedup=?",
                                   (pid, w.dedup)).fetchone()
                if row is not None:
                    raise DuplicateDedup(f"pushed message {a.message_id} duplicates message {row[0]} already "
                                         f"scheduled on process {pid}", row[0])
            heads.pop(pid, None)
            raise StoreConflict(f"slot {a.nonce} of process {pid} (assignment {a.id}) is taken")
        if w.process is not None:
            p = w.process
            conn.execute("INSERT OR IGNORE INTO processes VALUES (?,?,?,?,?,?)",
                         (p.id, p.owner, p.module, p.scheduler, p.timestamp, p.block_height))
        if new_item:
            self._write_item(conn, w.item, tag_rows, msg_seq)
        heads[pid] = op.head if w is op.write else Head(pid, a.nonce, a.id, a.hash_chain, a.timestamp)
        return a, True

    def _apply_write(self, conn: sqlite3.Connection, w: ScheduleWrite, heads: dict, tag_rows: list) -> None:
        """A pre-built slot, in its own savepoint so that a refused one leaves nothing behind."""
        conn.execute("SAVEPOINT w")
        mark = len(tag_rows)
        try:
            self._write_schedule(conn, w, tag_rows)
        except BaseException:
            conn.execute("ROLLBACK TO w")
            conn.execute("RELEASE w")
            del tag_rows[mark:]
            raise
        conn.execute("RELEASE w")
        heads.pop(w.assignment.process_id, None)
        return None

    @staticmethod
    def _message_seq(conn: sqlite3.Connection, message_id: str, item: ItemRecord | None) -> tuple[int, bool]:
        """The seq a slot's message has in `items`, or will have (True: `item` is new, write it)."""
        row = conn.execute("SELECT seq FROM items WHERE id=?", (message_id,)).fetchone()
        if row is not None:
            return row[0], False
        if item is None:
            raise StoreConflict(f"item {message_id} is not in the log: only stored data items can be assigned")
        return conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM items").fetchone()[0], True

    @staticmethod
    def _write_item(conn: sqlite3.Connection, rec: ItemRecord, tag_rows: list, seq: int | None = None) -> None:
        cur = conn.execute("INSERT OR IGNORE INTO items (seq, id, owner, target, type, height, timestamp, raw) "
                           "VALUES (?,?,?,?,?,?,?,?)",
                           (seq, rec.id, rec.owner, rec.target, rec.type, rec.height, rec.timestamp, rec.raw))
        if cur.rowcount:
            seq = cur.lastrowid
            tag_rows += [(seq, t[0], t[1]) for t in (rec.tags if rec.tags is not None else rec.item().tags)]

    def _write_schedule(self, conn: sqlite3.Connection, w: ScheduleWrite, tag_rows: list) -> None:
        a = w.assignment
        if a.nonce > 0:
            if conn.execute("SELECT 1 FROM assignments WHERE process_id=? AND nonce=?",
                            (a.process_id, a.nonce - 1)).fetchone() is None:
                raise StoreConflict(f"nonce gap: process {a.process_id} has no nonce {a.nonce - 1} "
                                    f"before {a.nonce}")
        elif w.process is None and conn.execute("SELECT 1 FROM processes WHERE id=?",
                                                 (a.process_id,)).fetchone() is None:
            raise StoreConflict(f"nonce 0 of {a.process_id} needs its process record")
        msg_seq, new_item = self._message_seq(conn, a.message_id, w.item)
        conn.execute(_values_sql(_INSERT_ASSIGNMENT.replace("OR IGNORE ", ""), 11, 1),
                     (a.id, a.process_id, a.nonce, a.timestamp, a.block_height, a.hash_chain, a.message_id,
                      msg_seq, int(a.with_message), w.dedup, a.raw))
        if w.process is not None:
            p = w.process
            conn.execute("INSERT INTO processes VALUES (?,?,?,?,?,?)",
                         (p.id, p.owner, p.module, p.scheduler, p.timestamp, p.block_height))
        if new_item:
            self._write_item(conn, w.item, tag_rows, msg_seq)

    # ---- item reads ------------------------------------------------------------------------
    def get_item(self, item_id: str) -> ItemRecord | None:
        conn = self._r()
        row = conn.execute(f"SELECT {_I_COLS} FROM items WHERE id=?", (item_id,)).fetchone()
        if row is not None:
            return _item(row)
        row = conn.execute("SELECT raw, timestamp, block_height FROM assignments WHERE id=?", (item_id,)).fetchone()
        if row is None:
            return None
        item = parse(bytes(row[0]))
        return ItemRecord(item.id, item.raw, item.owner_address, item.target_id, "Assignment", row[2], row[1], 0)

    def query_items(self, *, ids: Sequence[str] | None = None, owners: Sequence[str] | None = None,
                    recipients: Sequence[str] | None = None,
                    tags: Sequence[tuple[str, Sequence[str]]] | None = None, first: int = 100,
                    after: str | None = None, sort: str = "HEIGHT_DESC") -> ItemPage:
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
        if first < 1:
            raise ValueError(f"first must be at least 1, got {first}")
        where: list[str] = []
        params: list = []
        for col, values in (("id", ids), ("owner", owners), ("target", recipients)):
            if values is not None:
                values = list(values)
                if not values:
                    return ItemPage([], False)
                where.append(f"{col} IN ({','.join('?' * len(values))})")
                params += values
        for name, values in tags or ():
            values = [values] if isinstance(values, str) else list(values)
            if not values:
                continue
            where.append(f"seq IN (SELECT item_seq FROM tags WHERE name=? AND value IN "
                         f"({','.join('?' * len(values))}))")
            params += [name, *values]
        desc = sort == "HEIGHT_DESC"
        if after:
            height, seq = decode_cursor(after)
            where.append("(height, seq) < (?, ?)" if desc else "(height, seq) > (?, ?)")
            params += [height, seq]
        order = "height DESC, seq DESC" if desc else "height ASC, seq ASC"
        sql = (f"SELECT {_I_COLS} FROM items {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY {order} LIMIT ?")
        rows = self._r().execute(sql, (*params, first + 1)).fetchall()
        return ItemPage([_item(r) for r in rows[:first]], len(rows) > first)

    # ---- schedule reads --------------------------------------------------------------------
    def get_process(self, process_id: str) -> ProcessRecord | None:
        row = self._r().execute(
            "SELECT p.id, p.owner, p.module, p.scheduler, p.timestamp, p.block_height, i.raw "
            "FROM processes p LEFT JOIN items i ON i.id = p.id WHERE p.id=?", (process_id,)).fetchone()
        if row is None:
            return None
        return ProcessRecord(*row[:6], bytes(row[6]) if row[6] is not None else None)

    def process_ids(self) -> list[str]:
        return [r[0] for r in self._r().execute("SELECT id FROM processes ORDER BY timestamp, id")]

    def latest_assignment(self, process_id: str) -> AssignmentRecord | None:
        row = self._r().execute(
            _A_JOIN + "WHERE a.process_id=? ORDER BY a.nonce DESC LIMIT 1", (process_id,)).fetchone()
        return None if row is None else _assignment(row, bytes(row[9]) if row[9] is not None else None)

    def find_assignment(self, item_id: str, process_id: str | None = None, *,
                        by_assignment_id: bool = True) -> AssignmentRecord | None:
        conn = self._r()
        base = _A_JOIN + "WHERE "
        by_message = "a.message_seq=(SELECT seq FROM items WHERE id=?)"
        if process_id is not None:
            row = conn.execute(base + by_message + " AND a.process_id=?", (item_id, process_id)).fetchone()
            if row is None and by_assignment_id:
                row = conn.execute(base + "a.id=? AND a.process_id=?", (item_id, process_id)).fetchone()
        else:
            row = conn.execute(base + by_message + " ORDER BY a.rowid LIMIT 1", (item_id,)).fetchone()
            if row is None and by_assignment_id:
                row = conn.execute(base + "a.id=?", (item_id,)).fetchone()
        return None if row is None else _assignment(row, bytes(row[9]) if row[9] is not None else None)

    def find_dedup(self, process_id: str, dedup: str) -> str | None:
        row = self._r().execute("SELECT message_id FROM assignments WHERE process_id=? AND dedup=?",
                                (process_id, dedup)).fetchone()
        return None if row is None else row[0]

    def list_assignments(self, process_id: str, *, from_timestamp: int | None = None,
                         to_timestamp: int | None = None, from_nonce: int | None = None,
                         to_nonce: int | None = None, limit: int = 100) -> list[AssignmentRecord]:
        conn = self._r()
        # Timestamps never decrease along a chain: "timestamp > F" is "nonce > last nonce stamped
        # <= F", found by binary search on the (process, nonce) key; the timestamp conditions stay
        # in the query too, so the answer is exact even for a log written out of order.
        if from_timestamp is not None or to_timestamp is not None:
            last = conn.execute("SELECT max(nonce) FROM assignments WHERE process_id=?", (process_id,)).fetchone()[0]
            if last is None:
                return []
            if from_timestamp is not None:
                n = self._last_nonce_at(conn, process_id, from_timestamp, last)
                from_nonce = n if from_nonce is None else max(from_nonce, n)
            if to_timestamp is not None:
                n = self._last_nonce_at(conn, process_id, to_timestamp, last)
                to_nonce = n if to_nonce is None else min(to_nonce, n)
        where, params = ["a.process_id=?"], [process_id]
        for op, col, value in ((">", "a.timestamp", from_timestamp), ("<=", "a.timestamp", to_timestamp),
                               (">", "a.nonce", from_nonce), ("<=", "a.nonce", to_nonce)):
            if value is not None:
                where.append(f"{col} {op} ?")
                params.append(value)
        rows = conn.execute(
            _A_JOIN + f"WHERE {' AND '.join(where)} ORDER BY a.nonce LIMIT ?", (*params, limit)).fetchall()
        return [_assignment(r, bytes(r[9]) if r[9] is not None else None) for r in rows]

    @staticmethod
    def _last_nonce_at(conn: sqlite3.Connection, process_id: str, timestamp: int, last: int) -> int:
        """The last nonce whose timestamp is <= `timestamp` (-1: none), in O(log n) point lookups."""
        lo, hi = -1, last                                 # nonce lo is <= timestamp; nonces after hi are >
        while lo < hi:
            mid = (lo + hi + 1) // 2
            row = conn.execute("SELECT timestamp FROM assignments WHERE process_id=? AND nonce=?",
                               (process_id, mid)).fetchone()
            if row is not None and row[0] <= timestamp:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def iter_assignments(self, process_id: str, batch: int = 1000) -> Iterator[AssignmentRecord]:
        nonce = -1
        while True:
            rows = self._r().execute(f"SELECT {_A_COLS} FROM assignments a WHERE a.process_id=? AND a.nonce>? "
                                     "ORDER BY a.nonce LIMIT ?", (process_id, nonce, batch)).fetchall()
            if not rows:
                return
            for r in rows:
                yield _assignment(r)
            nonce = rows[-1][2]


def open_store(data_dir: str | os.PathLike, **kwargs) -> SQLiteStore:
    """The default log of a data directory: DIR/aonet.sqlite."""
    return SQLiteStore(Path(data_dir) / "aonet.sqlite", **kwargs)

