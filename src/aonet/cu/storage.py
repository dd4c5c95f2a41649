"""The CU's own database (SQLite, WAL) under its data dir: results by message, and checkpoints.

- `results`: one row per evaluated message (scheduled or cron), keyed like AO's CU: a scheduled
  message by (process, nonce), a cron by (process, timestamp, ordinate, cron). `/results` pages by
  (timestamp, ordinate, cron) with errored results left out; `/result` finds a row by message id.
- `checkpoints`: where a process stood (last nonce, timestamp, ordinate, cron, block height, hash
  chain) plus the key of its memory image. Images live in `blobs`, zstd-compressed and addressed
  by the sha256 of the compressed bytes (hashing 32 MiB of raw memory costs ~35 ms here, compressing
  it ~11 ms; identical memory compresses to identical bytes, so identical states share a blob).
  Only states after a successful message are ever checkpointed: a failed message leaves the state
  as before it, and the evaluator never snapshots in between.

Writers: one per process at a time (the worker that owns it); several processes may write
concurrently (WAL + busy timeout). Readers (the HTTP shell) use their own connections.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import zstandard

# One encoder for every result row: json.dumps(..., separators=...) builds a new encoder per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode     # ASCII: lone surrogates must not reach SQLite

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    process_id TEXT NOT NULL,
    message_id TEXT,              -- NULL for cron messages
    nonce INTEGER,                -- NULL for cron messages
    timestamp INTEGER NOT NULL,
    ordinate INTEGER NOT NULL,
    cron TEXT NOT NULL,           -- '' for scheduled messages
    block_height INTEGER NOT NULL,
    error INTEGER NOT NULL,
    result TEXT NOT NULL,         -- JSON, AO's shape without Memory
    PRIMARY KEY (process_id, timestamp, ordinate, cron)
) WITHOUT ROWID;
DROP INDEX IF EXISTS results_message;  -- (message_id, process_id): the planner preferred the primary key to it
-- process_id first, so the planner sees two equality columns here against one in the primary key
-- (without it /result and the duplicate check scanned every row of the process: 5 ms at 15k rows).
CREATE INDEX IF NOT EXISTS results_by_message ON results(process_id, message_id, nonce);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY,
    process_id TEXT NOT NULL,
    module_id TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    ordinate INTEGER NOT NULL,
    cron TEXT NOT NULL,
    block_height INTEGER NOT NULL,
    assignment_id TEXT,
    hash_chain TEXT,
    left_timestamp INTEGER NOT NULL,
    left_height INTEGER NOT NULL,
    blob TEXT NOT NULL,
    memory_size INTEGER NOT NULL,
    evaluated INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_process ON checkpoints(process_id, nonce, timestamp);
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""

RESULT_BY_MESSAGE = "SELECT result FROM results WHERE message_id=? AND process_id=? ORDER BY nonce LIMIT 1"
EVALUATED_BEFORE = "SELECT 1 FROM results WHERE message_id=? AND process_id=? AND nonce < ? LIMIT 1"


@dataclass
class ResultRow:
    process_id: str
    message_id: str | None
    nonce: int | None
    timestamp: int
    ordinate: int
    cron: str
    block_height: int
    error: bool
    result: dict


@dataclass(frozen=True)
class Position:
    """Where a process's evaluation stands: after scheduled `nonce` and, within the following gap,
    after the cron (`cron`, `timestamp`) — or right after the message when `cron` is ''."""
    nonce: int = -1                    # last scheduled nonce evaluated (-1: nothing yet)
    timestamp: int = 0                 # timestamp of the last evaluated message (or the origin)
    ordinate: int = 0
    cron: str = ""
    block_height: int = 0
    assignment_id: str | None = None
    hash_chain: str | None = None
    left_timestamp: int = 0            # the current gap's left boundary (last scheduled message or origin)
    left_height: int = 0


@dataclass(frozen=True)
class Checkpoint:
    process_id: str
    module_id: str
    position: Position
    blob: str
    memory_size: int
    evaluated: int
    created_at: int
    id: int | None = None


class CUStorage:
    """Results and checkpoints of one CU. Thread-safe: one connection per thread."""

    def __init__(self, path: str | Path, *, zstd_level: int = 1, single_connection: bool = False,
                 cache_mib: int = 32):
        """`single_connection`: one connection whatever the calling thread — for an owner that
        serialises its calls (the engine: its calls hop between worker threads, and a page cache
        per thread would be cold each hop). Otherwise one connection per thread (the HTTP shell)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.zstd_level = zstd_level
        self.single_connection = single_connection
        self.cache_mib = cache_mib
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        c = self._shared if self.single_connection else getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA busy_timeout=60000")
            # a page cache that holds the message index (random inserts: ~160 B per result), and
            # fewer WAL checkpoints (each one fsyncs): 20 -> 13 µs per stored result at 100k rows
            c.execute(f"PRAGMA cache_size=-{int(self.cache_mib) * 1024}")
            c.execute("PRAGMA wal_autocheckpoint=16384")
            if self.single_connection:
                self._shared = c
            else:
                self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except sqlite3.Error:
                    pass
            self._conns.clear()
        self._local = threading.local()
        self._shared = None

    # ---- results ---------------------------------------------------------------------------
    def put_results(self, rows: Sequence[ResultRow]) -> None:
        if not rows:
            return
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            c.executemany(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?)",
                [(r.process_id, r.message_id, r.nonce, r.timestamp, r.ordinate, r.cron, r.block_height,
                  int(bool(r.error)), _encode(r.result)) for r in rows])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def get_result(self, process_id: str, message_id: str) -> dict | None:
        row = self._conn().execute(RESULT_BY_MESSAGE, (message_id, process_id)).fetchone()
        return json.loads(row[0]) if row else None

    def evaluated_before(self, process_id: str, message_id: str, nonce: int) -> bool:
        """Whether `message_id` was already evaluated at a nonce below `nonce` (a duplicate assignment)."""
        return self._conn().execute(EVALUATED_BEFORE, (message_id, process_id, nonce)).fetchone() is not None

    def page_results(self, process_id: str, *, after: tuple | None = None, upto: tuple | None = None,
                     sort: str = "ASC", limit: int = 25, cron_only: bool = False,
                     include_errors: bool = False) -> tuple[list[tuple[tuple, dict]], bool]:
        """Rows as ((timestamp, ordinate, cron), result) in `sort` order; `after` exclusive, `upto`
        inclusive in that order's direction. Returns (rows, has_next_page)."""
        desc = sort.upper() == "DESC"
        where, args = ["process_id=?"], [process_id]
        if not include_errors:
            where.append("error=0")
        if cron_only:
            where.append("cron<>''")
        if after is not None:
            where.append("(timestamp, ordinate, cron) " + ("<" if desc else ">") + " (?,?,?)")
            args += list(after)
        if upto is not None:
            where.append("(timestamp, ordinate, cron) " + (">=" if desc else "<=") + " (?,?,?)")
            args += list(upto)
        order = "DESC" if desc else "ASC"
        rows = self._conn().execute(
            f"SELECT timestamp, ordinate, cron, result FROM results WHERE {' AND '.join(where)} "
            f"ORDER BY timestamp {order}, ordinate {order}, cron {order} LIMIT ?", (*args, limit + 1)).fetchall()
        out = [((r[0], r[1], r[2]), json.loads(r[3])) for r in rows[:limit]]
        return out, len(rows) > limit

    def count_results(self, process_id: str) -> int:
        return self._conn().execute("SELECT count(*) FROM results WHERE process_id=?", (process_id,)).fetchone()[0]

    # ---- checkpoints -----------------------------------------------------------------------
    def compress(self, memory: bytes) -> tuple[str, bytes]:
        z = zstandard.ZstdCompressor(level=self.zstd_level).compress(memory)
        return hashlib.sha256(z).hexdigest(), z

    def save_checkpoint(self, process_id: str, module_id: str, position: Position, memory: bytes,
                        evaluated: int, *, keep: int = 4, compressed: tuple[str, bytes] | None = None) -> Checkpoint:
        key, z = compressed or self.compress(memory)
        ck = Checkpoint(process_id, module_id, position, key, len(memory), evaluated, int(time.time() * 1000))
        p = position
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("INSERT OR IGNORE INTO blobs VALUES (?,?,?)", (key, len(memory), z))
            cur = c.execute(
                "INSERT INTO checkpoints (process_id, module_id, nonce, timestamp, ordinate, cron, block_height, "
                "assignment_id, hash_chain, left_timestamp, left_height, blob, memory_size, evaluated, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (process_id, module_id, p.nonce, p.timestamp, p.ordinate, p.cron, p.block_height, p.assignment_id,
                 p.hash_chain, p.left_timestamp, p.left_height, key, len(memory), evaluated, ck.created_at))
            ck = Checkpoint(**{**asdict(ck), "position": position, "id": cur.lastrowid})
            if keep > 0:
                self._prune(c, process_id, keep)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return ck

    @staticmethod
    def _prune(c: sqlite3.Connection, process_id: str, keep: int) -> None:
        old = c.execute("SELECT id FROM checkpoints WHERE process_id=? ORDER BY nonce DESC, timestamp DESC, id DESC "
                        "LIMIT -1 OFFSET ?", (process_id, keep)).fetchall()
        if not old:
            return
        c.executemany("DELETE FROM checkpoints WHERE id=?", old)
        c.execute("DELETE FROM blobs WHERE key NOT IN (SELECT blob FROM checkpoints)")

    def latest_checkpoint(self, process_id: str, module_id: str, *, max_nonce: int | None = None,
                          max_timestamp: int | None = None) -> Checkpoint | None:
        where, args = ["process_id=?", "module_id=?"], [process_id, module_id]
        if max_nonce is not None:
            where.append("nonce<=?")
            args.append(max_nonce)
        if max_timestamp is not None:
            where.append("timestamp<=?")
            args.append(max_timestamp)
        row = self._conn().execute(
            "SELECT id, nonce, timestamp, ordinate, cron, block_height, assignment_id, hash_chain, blob, memory_size, "
            f"evaluated, created_at, left_timestamp, left_height FROM checkpoints WHERE {' AND '.join(where)} "
            "ORDER BY nonce DESC, timestamp DESC, id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        pos = Position(nonce=row[1], timestamp=row[2], ordinate=row[3], cron=row[4], block_height=row[5],
                       assignment_id=row[6], hash_chain=row[7], left_timestamp=row[12], left_height=row[13])
        return Checkpoint(process_id, module_id, pos, row[8], row[9], row[10], row[11], row[0])

    def load_memory(self, key: str) -> bytes:
        row = self._conn().execute("SELECT size, data FROM blobs WHERE key=?", (key,)).fetchone()
        if row is None:
            raise KeyError(f"checkpoint blob {key} is missing")
        return zstandard.ZstdDecompressor().decompress(row[1], max_output_size=row[0])

    def checkpoint_count(self, process_id: str | None = None) -> int:
        if process_id is None:
            return self._conn().execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        return self._conn().execute("SELECT count(*) FROM checkpoints WHERE process_id=?",
                                    (process_id,)).fetchone()[0]

    def blob_size(self, key: str) -> int:
        row = self._conn().execute("SELECT length(data) FROM blobs WHERE key=?", (key,)).fetchone()
        return row[0] if row else 0
