"""The MU's durable task queue (SQLite): every push the crank owes survives a restart.

Theory of operation:
- A task is one delivery owed: pull a result (`result`), push a message (`message`), a spawn
  (`spawn`) or an assignment (`assign`). An outbox entry the crank could not turn into an item
  is stored as a finished `error` task, so the trace shows it.
- Each task has a unique, deterministic `key` (source id + outbox kind + index). `add` ignores a
  key it already holds, so replaying a result after a crash enqueues nothing twice.
- A task moves through `stage`s (e.g. sign -> push -> result); the shell saves each stage, and the
  signed item itself, before acting on it, so a retry re-sends the very same bytes.
- `complete(key, children)` marks a task done and enqueues what its result asked for in one
  transaction: a crash leaves either both or neither.
- Failures are retried with exponential backoff until `max_retries`, then the task is `failed`.
- Nothing is "running" on disk: after a restart every unfinished task is simply ready again.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT UNIQUE NOT NULL,
  kind TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  stage TEXT NOT NULL DEFAULT 'start',
  payload TEXT NOT NULL,
  item BLOB,
  item_id TEXT,
  target TEXT,
  root TEXT,
  parent TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at REAL NOT NULL DEFAULT 0,
  error TEXT,
  created REAL NOT NULL,
  updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks(state, next_at, seq);
CREATE INDEX IF NOT EXISTS tasks_item ON tasks(item_id);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks(parent);
CREATE INDEX IF NOT EXISTS tasks_root ON tasks(root);
CREATE TABLE IF NOT EXISTS monitors(pid TEXT PRIMARY KEY, cursor TEXT, created REAL NOT NULL);
"""

PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass
class NewTask:
    key: str
    kind: str
    payload: dict
    target: str | None = None
    root: str | None = None
    state: str = PENDING
    error: str | None = None
    item_id: str | None = None


@dataclass
class Task:
    seq: int
    key: str
    kind: str
    state: str
    stage: str
    payload: dict
    item: bytes | None
    item_id: str | None
    target: str | None
    root: str | None
    parent: str | None
    attempts: int
    next_at: float
    error: str | None
    created: float = 0.0
    updated: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"key": self.key, "kind": self.kind, "state": self.state, "stage": self.stage,
                "id": self.item_id, "target": self.target, "root": self.root, "parent": self.parent,
                "attempts": self.attempts, "error": self.error, "created": self.created,
                "updated": self.updated, "payload": self.payload}


_COLS = "seq,key,kind,state,stage,payload,item,item_id,target,root,parent,attempts,next_at,error,created,updated"


def _row(r: tuple) -> Task:
    return Task(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8], r[9], r[10], r[11], r[12],
                r[13], r[14], r[15])


class TaskQueue:
    """SQLite-backed; safe to call from one event loop (and threads, under its lock)."""

    def __init__(self, path: str | Path, *, retry_base: float = 0.25, max_retries: int = 10,
                 max_delay: float = 30.0):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.retry_base, self.max_retries, self.max_delay = retry_base, max_retries, max_delay
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: survives a process kill
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # ---- writing -------------------------------------------------------------------------
    def _insert(self, tasks: Iterable[NewTask], parent: str | None, now: float) -> int:
        n = 0
        for t in tasks:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO tasks(key,kind,state,payload,item_id,target,root,parent,error,created,updated)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (t.key, t.kind, t.state, json.dumps(t.payload), t.item_id, t.target, t.root, parent, t.error,
                 now, now))
            n += cur.rowcount
        return n

    def add(self, tasks: Iterable[NewTask], *, parent: str | None = None,
            monitor_cursor: tuple[str, str] | None = None) -> int:
        """Enqueue tasks whose keys are new (atomically); returns how many were new."""
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                n = self._insert(tasks, parent, now)
                if monitor_cursor:
                    self.db.execute("UPDATE monitors SET cursor=? WHERE pid=?", (monitor_cursor[1], monitor_cursor[0]))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return n

    def save_stage(self, key: str, stage: str, *, payload: dict | None = None, item: bytes | None = None,
                   item_id: str | None = None) -> None:
        """Persist progress before acting on it (e.g. the signed item before it is sent)."""
        sets, args = ["stage=?", "updated=?"], [stage, time.time()]
        if payload is not None:
            sets.append("payload=?")
            args.append(json.dumps(payload))
        if item is not None:
            sets.append("item=?")
            args.append(item)
        if item_id is not None:
            sets.append("item_id=?")
            args.append(item_id)
        with self._lock:
            self.db.execute(f"UPDATE tasks SET {','.join(sets)} WHERE key=?", (*args, key))

    def complete(self, key: str, children: Iterable[NewTask] = (), *, error: str | None = None,
                 stage: str = "done") -> int:
        """Mark done and enqueue the children in one transaction; returns new children count."""
        now = time.time()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                n = self._insert(children, key, now)
                self.db.execute("UPDATE tasks SET state=?, stage=?, error=?, updated=? WHERE key=?",
                                (DONE, stage, error, now, key))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return n

    def fail(self, key: str, error: str, *, permanent: bool = False) -> bool:
        """Record a failure; schedule a retry with backoff. Returns True when it will be retried."""
        now = time.time()
        with self._lock:
            row = self.db.execute("SELECT attempts FROM tasks WHERE key=?", (key,)).fetchone()
            if row is None:
                return False
            attempts = row[0] + 1
            if permanent or attempts > self.max_retries:
                self.db.execute("UPDATE tasks SET state=?, attempts=?, error=?, updated=? WHERE key=?",
                                (FAILED, attempts, error, now, key))
                return False
            delay = min(self.max_delay, self.retry_base * (2 ** (attempts - 1)))
            self.db.execute("UPDATE tasks SET attempts=?, next_at=?, error=?, updated=? WHERE key=?",
                            (attempts, now + delay, error, now, key))
            return True

    # ---- reading -------------------------------------------------------------------------
    def ready(self, limit: int = 64, *, now: float | None = None, skip: Iterable[str] = (),
              skip_targets: Iterable[str] = ()) -> list[Task]:
        """Pending tasks due now, oldest first, except the keys in `skip` (in flight) and tasks whose
        target (or key, when it has none) is in `skip_targets` (busy).

        Skipped rows are left out by SQLite before their payloads are decoded: with hundreds of
        tasks queued for a few busy targets, decoding them all on every pass cost ~1 ms."""
        now = time.time() if now is None else now
        skip, busy = list(set(skip)), list(set(skip_targets))
        sql = f"SELECT {_COLS} FROM tasks WHERE state='pending' AND next_at<=?"
        args: list = [now]
        if skip:
            sql += " AND key NOT IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(skip))
        if busy:
            sql += " AND coalesce(nullif(target, ''), key) NOT IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(busy))
        with self._lock:
            rows = self.db.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
        return list(map(_row, rows))

    def next_due(self) -> float | None:
        with self._lock:
            row = self.db.execute("SELECT MIN(next_at) FROM tasks WHERE state='pending'").fetchone()
        return row[0]

    def get(self, key: str) -> Task | None:
        with self._lock:
            r = self.db.execute(f"SELECT {_COLS} FROM tasks WHERE key=?", (key,)).fetchone()
        return _row(r) if r else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.db.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall()
        return {s: n for s, n in rows}

    def count_pushed(self) -> int:
        """Items the MU pushed (messages + spawns done): the cascade throughput counter."""
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM tasks WHERE state='done' AND kind IN ('message','spawn')"
                                   ).fetchone()[0]

    def trace(self, message_id: str, limit: int = 10_000) -> list[Task]:
        """The whole cascade `message_id` caused: the tasks that pushed or pulled it and all descendants."""
        with self._lock:
            rows = self.db.execute(
                f"SELECT {_COLS} FROM tasks WHERE item_id=? OR root=? OR key=? ORDER BY seq",
                (message_id, message_id, f"result:{message_id}")).fetchall()
            seen = {r[1] for r in rows}
            frontier = list(seen)
            out = list(rows)
            while frontier and len(out) < limit:
                marks = ",".join("?" * len(frontier[:500]))
                children = self.db.execute(f"SELECT {_COLS} FROM tasks WHERE parent IN ({marks}) ORDER BY seq",
                                           frontier[:500]).fetchall()
                frontier = frontier[500:]
                for c in children:
                    if c[1] not in seen:
                        seen.add(c[1])
                        out.append(c)
                        frontier.append(c[1])
        return sorted(map(_row, out), key=lambda t: t.seq)[:limit]

    # ---- cron monitors ---------------------------------------------------------------------
    def add_monitor(self, pid: str, cursor: str | None = None) -> bool:
        with self._lock:
            cur = self.db.execute("INSERT OR IGNORE INTO monitors(pid,cursor,created) VALUES(?,?,?)",
                                  (pid, cursor, time.time()))
            return cur.rowcount == 1

    def remove_monitor(self, pid: str) -> bool:
        with self._lock:
            return self.db.execute("DELETE FROM monitors WHERE pid=?", (pid,)).rowcount == 1

    def monitors(self) -> dict[str, str | None]:
        with self._lock:
            return dict(self.db.execute("SELECT pid, cursor FROM monitors").fetchall())

    def set_cursor(self, pid: str, cursor: str | None) -> None:
        with self._lock:
            self.db.execute("UPDATE monitors SET cursor=? WHERE pid=?", (cursor, pid))


def payload_json(value: Any) -> Any:
    """Bytes in payloads travel as latin-1 text (lossless) so payloads stay JSON."""
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value
