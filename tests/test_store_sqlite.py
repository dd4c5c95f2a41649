"""The SQLite log: durability contract, invariants, item queries."""
import sqlite3
import threading

import pytest

from aonet.protocol import build_message, build_module, build_process
from aonet.store import ItemRecord, ScheduleWrite, SQLiteStore, Store, StoreConflict, StoreError
from aonet.su import core
from aonet.wallet import Wallet

SU = Wallet.generate("ed25519")
ALICE, BOB = Wallet.generate("ed25519"), Wallet.generate("ethereum")


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "log.sqlite")
    yield s
    s.close()


def schedule_chain(store, process, messages, t0=1000):
    """Write a process and its messages the way the SU does; returns the assignments."""
    slot = core.next_slot(None, process.id, t0, 1)
    a = core.build_assignment(SU, slot, None)
    out = [a]
    store.submit(ScheduleWrite(a, core.item_record(process, slot), core.process_record(process, slot))).result()
    for i, m in enumerate(messages):
        slot = core.next_slot(core.Head.of(a), process.id, t0 + i + 1, 1)
        a = core.build_assignment(SU, slot, m.id)
        store.submit(ScheduleWrite(a, core.item_record(m, slot))).result()
        out.append(a)
    return out


def test_is_a_store_and_uses_wal_full(store):
    assert isinstance(store, Store)
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.synchronous == "FULL"
    with pytest.raises(ValueError):
        SQLiteStore(store.path, synchronous="OFF")


def test_schedule_reads(store):
    p = build_process(ALICE, "M" * 43, SU.address)
    msgs = [build_message(ALICE, p.id, data=f"m{i}") for i in range(5)]
    chain = schedule_chain(store, p, msgs)
    proc = store.get_process(p.id)
    assert proc.owner == ALICE.address and proc.module == "M" * 43 and proc.raw == p.raw
    assert store.process_ids() == [p.id]
    latest = store.latest_assignment(p.id)
    assert latest.nonce == 5 and latest.id == chain[-1].id and latest.message_raw == msgs[-1].raw
    found = store.find_assignment(msgs[2].id, p.id)
    assert found.nonce == 3 and found.message_raw == msgs[2].raw
    assert store.find_assignment(chain[2].id).message_id == msgs[1].id            # by assignment id
    assert store.find_assignment(chain[2].id, by_assignment_id=False) is None
    assert store.find_assignment("Z" * 43) is None
    page = store.list_assignments(p.id, from_nonce=1, to_nonce=3)
    assert [a.nonce for a in page] == [2, 3]
    assert [a.nonce for a in store.list_assignments(p.id, from_timestamp=1002, limit=2)] == [3, 4]
    assert [a.nonce for a in store.list_assignments(p.id, to_timestamp=1001)] == [0, 1]
    assert [a.nonce for a in store.iter_assignments(p.id, batch=2)] == [0, 1, 2, 3, 4, 5]
    assert store.get_process("nope") is None and store.latest_assignment("nope") is None


def test_invariants_fail_only_the_bad_write(store):
    p = build_process(ALICE, "M" * 43, SU.address)
    chain = schedule_chain(store, p, [build_message(ALICE, p.id)])
    head = core.Head.of(chain[-1])
    m2, m3 = build_message(ALICE, p.id, data="2"), build_message(ALICE, p.id, data="3")
    good = core.build_assignment(SU, core.next_slot(head, p.id, 2000, 1), m2.id)
    gap = core.build_assignment(SU, core.Slot(p.id, 9, "x", 2000, 1), m3.id)
    dup_nonce = core.build_assignment(SU, core.next_slot(head, p.id, 2000, 1), m3.id)
    # submitted together: they land in one batch; the good one commits, the others fail alone
    futs = [store.submit(ScheduleWrite(good, core.item_record(m2, core.next_slot(head, p.id, 2000, 1)))),
            store.submit(ScheduleWrite(gap)), store.submit(ScheduleWrite(dup_nonce))]
    assert futs[0].result() is None
    with pytest.raises(StoreConflict, match="nonce gap"):
        futs[1].result()
    with pytest.raises(StoreConflict):
        futs[2].result()
    assert store.latest_assignment(p.id).id == good.id
    # same message twice on one process
    again = core.build_assignment(SU, core.next_slot(core.Head.of(good), p.id, 3000, 1), m2.id)
    with pytest.raises(StoreConflict):
        store.submit(ScheduleWrite(again)).result()
    # nonce 0 needs a process record
    orphan = core.build_assignment(SU, core.next_slot(None, "Q" * 43, 1, 1), None)
    with pytest.raises(StoreConflict, match="process record"):
        store.submit(ScheduleWrite(orphan)).result()


def test_dedup_lookup(store):
    p = build_process(ALICE, "M" * 43, SU.address)
    schedule_chain(store, p, [])
    m = build_message(ALICE, p.id, tags=[("From-Process", "F" * 43)])
    slot = core.next_slot(core.Head.of(store.latest_assignment(p.id)), p.id, 5, 1)
    a = core.build_assignment(SU, slot, m.id)
    store.submit(ScheduleWrite(a, core.item_record(m, slot), dedup="hash1")).result()
    assert store.find_dedup(p.id, "hash1") == m.id and store.find_dedup(p.id, "other") is None


def test_durable_across_reopen(tmp_path):
    path = tmp_path / "log.sqlite"
    s = SQLiteStore(path)
    p = build_process(ALICE, "M" * 43, SU.address)
    pending = []
    slot = core.next_slot(None, p.id, 1, 1)
    a = core.build_assignment(SU, slot, None)
    pending.append(s.submit(ScheduleWrite(a, core.item_record(p, slot), core.process_record(p, slot))))
    for i in range(50):
        m = build_message(ALICE, p.id, data=str(i))
        slot = core.next_slot(core.Head.of(a), p.id, 2 + i, 1)
        a = core.build_assignment(SU, slot, m.id)
        pending.append(s.submit(ScheduleWrite(a, core.item_record(m, slot))))
    s.close()                                   # drains the queue before closing
    assert all(f.done() and f.exception() is None for f in pending)
    with pytest.raises(StoreError):
        s.submit(ScheduleWrite(a)).result()
    s2 = SQLiteStore(path)
    assert s2.latest_assignment(p.id).nonce == 50
    assert s2.stats["writes"] == 0
    s2.close()


def test_group_commit_batches_concurrent_writers(store):
    procs = [build_process(ALICE, "M" * 43, SU.address, tags=[("Name", str(i))]) for i in range(8)]

    def worker(p):
        schedule_chain(store, p, [build_message(ALICE, p.id, data=str(i)) for i in range(20)])
    threads = [threading.Thread(target=worker, args=(p,)) for p in procs]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(store.latest_assignment(p.id).nonce == 20 for p in procs)
    assert store.stats["writes"] == 8 * 21
    assert store.stats["max_batch"] > 1


def test_items_query(store):
    module = build_module(ALICE, b"\0asm", tags=[("Name", "m1")])
    loc = store.put_item(build_message(BOB, "A" * 43, tags=[("Action", "Ping")]), height=7, timestamp=70)
    assert loc.height == 7 and loc.type == "Message" and loc.target == "A" * 43
    rec = store.put_item(module, height=9)
    assert store.put_item(module, height=99).height == 9          # idempotent: first copy kept
    assert rec.owner == ALICE.address and rec.type == "Module"
    got = store.get_item(module.id)
    assert got.raw == module.raw and got.item().tag("Name") == "m1"
    assert store.get_item("nope") is None
    q = store.query_items
    assert [i.id for i in q(ids=[module.id]).items] == [module.id]
    assert [i.id for i in q(owners=[BOB.address]).items] == [loc.id]
    assert [i.id for i in q(recipients=["A" * 43]).items] == [loc.id]
    assert [i.id for i in q(tags=[("Type", ["Module", "Process"])]).items] == [module.id]
    assert [i.id for i in q(tags=[("Type", ["Module"]), ("Name", ["m1"])]).items] == [module.id]
    assert q(tags=[("Type", ["Module"]), ("Name", ["m2"])]).items == []
    assert q(ids=[]).items == []
    assert [i.id for i in q().items] == [module.id, loc.id]                # HEIGHT_DESC
    assert [i.id for i in q(sort="HEIGHT_ASC").items] == [loc.id, module.id]
    page1 = q(first=1, sort="HEIGHT_ASC")
    assert page1.has_next_page and page1.items[0].id == loc.id
    page2 = q(first=1, sort="HEIGHT_ASC", after=page1.items[0].cursor)
    assert [i.id for i in page2.items] == [module.id] and not page2.has_next_page
    with pytest.raises(ValueError):
        q(sort="SIDEWAYS")
    with pytest.raises(ValueError):
        q(after="!!not a cursor")


def test_get_item_finds_assignments(store):
    p = build_process(ALICE, "M" * 43, SU.address)
    chain = schedule_chain(store, p, [])
    rec = store.get_item(chain[0].id)
    assert rec.type == "Assignment" and rec.owner == SU.address and rec.raw == chain[0].raw
    assert [i.id for i in store.query_items(tags=[("Type", ["Process"])]).items] == [p.id]


def test_item_record_of():
    m = build_message(ALICE, "A" * 43)
    rec = ItemRecord.of(m, height=1, timestamp=2)
    assert (rec.id, rec.owner, rec.target, rec.type) == (m.id, ALICE.address, "A" * 43, "Message")


def _request(process, item, *, new_process=False, dedup=None, t=10):
    """A ScheduleRequest whose build() signs the slot after whatever head the log hands it."""
    from aonet.store import ScheduleRequest

    def build(head):
        slot = core.next_slot(head, process.id, t, 1)
        return ScheduleWrite(core.build_assignment(SU, slot, None if new_process else item.id),
                             core.item_record(item, slot), core.process_record(item, slot) if new_process else None,
                             dedup)
    return ScheduleRequest(process.id, item.id, build, new_process, dedup)


def test_log_orders_requests_across_two_stores(tmp_path):
    """Two writers on one file (two SU workers): heads are re-read when the other one committed."""
    from aonet.store import DuplicateDedup, NoProcess
    path = tmp_path / "log.sqlite"
    s1, s2 = SQLiteStore(path), SQLiteStore(path)
    try:
        p = build_process(ALICE, "M" * 43, SU.address)
        assert s1.schedule(_request(p, p, new_process=True)).result()[1] is True
        again = s2.schedule(_request(p, p, new_process=True)).result()
        assert again[1] is False and again[0].nonce == 0
        msgs = [build_message(ALICE, p.id, data=str(i)) for i in range(40)]
        futs = [(s1 if i % 3 else s2).schedule(_request(p, m)) for i, m in enumerate(msgs)]
        futs += [s2.schedule(_request(p, msgs[0])), s1.schedule(_request(p, msgs[1]))]   # re-posts
        results = [f.result() for f in futs]
        assert sorted(a.nonce for a, created in results[:40]) == list(range(1, 41))
        assert [created for _, created in results[40:]] == [False, False]
        assert [a.id for a, _ in results[40:]] == [results[0][0].id, results[1][0].id]
        with pytest.raises(NoProcess):
            other = build_process(ALICE, "M" * 43, SU.address, tags=[("Name", "other")])
            s1.schedule(_request(other, msgs[0])).result()
        pushed = build_message(ALICE, p.id, data="d", tags=[("From-Process", "F" * 43)])
        s1.schedule(_request(p, pushed, dedup="h")).result()
        with pytest.raises(DuplicateDedup) as err:
            s2.schedule(_request(p, build_message(BOB, p.id, data="d"), dedup="h")).result()
        assert err.value.message_id == pushed.id
        chain = list(s1.iter_assignments(p.id))
        assert [a.nonce for a in chain] == list(range(42))
        from aonet.su import verify_chain
        assert verify_chain(s1, p.id, signer_address=SU.address).ok
    finally:
        s1.close()
        s2.close()


def _warm(store, p, n=6):
    """Schedule `p` and n messages one by one: the store then builds slots ahead (quiet log)."""
    store.schedule(_request(p, p, new_process=True)).result()
    for i in range(n):
        store.schedule(_request(p, build_message(ALICE, p.id, data=f"warm {i}"))).result()


def _chain_ok(store, p, n):
    from aonet.su import verify_chain
    assert [a.nonce for a in store.iter_assignments(p.id)] == list(range(n))
    report = verify_chain(store, p.id, signer_address=SU.address)
    assert report.ok, report.errors[:3]


def test_slots_built_ahead_commit_in_one_statement(store):
    p = build_process(ALICE, "M" * 43, SU.address)
    _warm(store, p)
    msgs = [build_message(ALICE, p.id, data=str(i)) for i in range(50)]
    results = [f.result() for f in [store.schedule(_request(p, m)) for m in msgs]]
    assert [a.nonce for a, _ in results] == list(range(7, 57))
    assert store.stats["prebuilt"] >= 50 and store.stats["rebuilt"] == 0
    _chain_ok(store, p, 57)
    found = store.find_assignment(msgs[3].id, p.id)
    assert found.nonce == 10 and found.message_raw == msgs[3].raw
    assert [i.id for i in store.query_items(tags=[("Type", ["Message"])], first=2).items] == [msgs[-1].id,
                                                                                              msgs[-2].id]
    # a re-post queued with fresh messages: the one-statement batch is refused, the replay answers
    again = [store.schedule(_request(p, m)) for m in (msgs[0], build_message(ALICE, p.id, data="new"), msgs[1])]
    (a0, c0), (a1, c1), (a2, c2) = [f.result() for f in again]
    assert (a0.id, c0, a2.id, c2) == (results[0][0].id, False, results[1][0].id, False)
    assert c1 and a1.nonce == 57
    _chain_ok(store, p, 58)


def test_one_statement_batches_write_every_tag_and_null(store):
    """The one-statement path packs tags five to a row and binds '' for NULL: nothing lost or added."""
    p = build_process(ALICE, "M" * 43, SU.address)
    _warm(store, p)
    shapes = [[], [("Empty", "")], [(f"T{i}", f"v{i}") for i in range(5)],
              [(f"T{i}", "x" * i) for i in range(6)], [("Same", str(i)) for i in range(11)]]
    msgs = [build_message(ALICE, p.id, data=str(i), tags=tags) for i, tags in enumerate(shapes)]
    dedups = [None, "d" * 43, None, "e" * 43, None]
    before = store.stats["prebuilt"], store.stats["replayed"]
    futures = [store.schedule(_request(p, m, dedup=d)) for m, d in zip(msgs, dedups)]
    assert all(created for _, created in (f.result() for f in futures))
    # every slot went through the one-statement path: none replayed row by row
    assert (store.stats["prebuilt"] - before[0], store.stats["replayed"] - before[1]) == (len(msgs), 0)
    db = sqlite3.connect(store.path)
    for m, d in zip(msgs, dedups):
        seq, type_ = db.execute("SELECT seq, type FROM items WHERE id=?", (m.id,)).fetchone()
        assert type_ == "Message"
        rows = db.execute("SELECT name, value FROM tags WHERE item_seq=? ORDER BY name, value", (seq,)).fetchall()
        assert rows == sorted(tuple(t) for t in m.tags)
        assert db.execute("SELECT dedup FROM assignments WHERE message_id=?", (m.id,)).fetchone() == (d,)
    db.close()
    assert store.find_dedup(p.id, "d" * 43) == msgs[1].id
    assert store.query_items(tags=[("Same", ["10"])]).items[0].id == msgs[4].id
    _chain_ok(store, p, 7 + len(msgs))


def test_assignments_of_stored_items_commit_in_one_statement(store):
    """`assign` (no item in the write) takes the one-statement path too, naming the stored item."""
    p, other = (build_process(ALICE, "M" * 43, SU.address, tags=[("Name", n)]) for n in ("p", "other"))
    _warm(store, p)
    store.schedule(_request(other, other, new_process=True)).result()
    m = build_message(ALICE, other.id, data="to other")
    store.schedule(_request(other, m)).result()
    from aonet.store import ScheduleRequest

    def assign(head):
        slot = core.next_slot(head, p.id, 10, 1)
        return ScheduleWrite(core.build_assignment(SU, slot, m.id, with_message=False), None, None, None)
    before = store.stats["prebuilt"], store.stats["replayed"]
    futures = [store.schedule(_request(p, build_message(ALICE, p.id, data="a"))),
               store.schedule(ScheduleRequest(p.id, m.id, assign)),
               store.schedule(_request(p, build_message(ALICE, p.id, data="b")))]
    (_, c0), (a, c1), (_, c2) = [f.result() for f in futures]
    assert c0 and c1 and c2 and a.nonce == 8
    assert (store.stats["prebuilt"] - before[0], store.stats["replayed"] - before[1]) == (3, 0)
    found = store.find_assignment(m.id, p.id)
    assert found.id == a.id and not found.with_message and found.message_raw is None
    assert store.find_assignment(m.id, other.id).nonce == 1
    _chain_ok(store, p, 10)


def test_wrong_prediction_is_rebuilt_on_the_log_head(tmp_path):
    """Another writer extends the process behind this store's back: the slot built ahead on the old
    head is refused in the transaction and rebuilt on the log's head (no fork, no gap)."""
    path = tmp_path / "log.sqlite"
    s1, s2 = SQLiteStore(path), SQLiteStore(path)
    try:
        p = build_process(ALICE, "M" * 43, SU.address)
        _warm(s1, p)
        s2.schedule(_request(p, build_message(BOB, p.id, data="via s2"))).result()      # nonce 7
        a, created = s1.schedule(_request(p, build_message(ALICE, p.id, data="via s1"))).result()
        assert created and a.nonce == 8
        assert s1.stats["rebuilt"] >= 1
        _chain_ok(s1, p, 9)
    finally:
        s1.close()
        s2.close()


def test_failed_commit_discards_slots_built_on_it(store):
    """A batch that fails to commit takes its slots with it; slots already built ahead on them are
    rebuilt on what the log really holds, and nothing unacknowledged leaves a gap."""
    p = build_process(ALICE, "M" * 43, SU.address)
    db = sqlite3.connect(store.path, isolation_level=None)
    db.execute("CREATE TRIGGER boom BEFORE INSERT ON tags WHEN NEW.value = 'boom' "
               "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    _warm(store, p)
    db.execute("BEGIN IMMEDIATE")                     # hold the write lock: the writer waits with batch 1
    bad = store.schedule(_request(p, build_message(ALICE, p.id, tags=[("X", "boom")])))
    import time
    time.sleep(0.3)                                   # batch 1 = [bad], built ahead, waiting for the lock
    later = [store.schedule(_request(p, build_message(ALICE, p.id, data=str(i)))) for i in range(5)]
    db.execute("ROLLBACK")
    with pytest.raises(StoreError):
        bad.result(timeout=30)
    got = [f.result(timeout=30) for f in later]
    assert [a.nonce for a, _ in got] == [7, 8, 9, 10, 11]
    assert store.stats["rebuilt"] >= 1
    _chain_ok(store, p, 12)
    db.close()


def test_timestamp_bounds_match_a_full_scan(store):
    """Timestamp pages are answered by binary search over nonces: same rows as filtering everything."""
    import random
    p = build_process(ALICE, "M" * 43, SU.address)
    rng = random.Random(7)
    slot = core.next_slot(None, p.id, 1000, 1)
    a = core.build_assignment(SU, slot, None)
    store.submit(ScheduleWrite(a, core.item_record(p, slot), core.process_record(p, slot))).result()
    t = 1000
    for i in range(60):
        t += rng.choice([0, 0, 0, 1, 3])                 # many slots share a millisecond
        m = build_message(ALICE, p.id, data=str(i))
        slot = core.next_slot(core.Head.of(a), p.id, t, 1)
        a = core.build_assignment(SU, slot, m.id)
        store.submit(ScheduleWrite(a, core.item_record(m, slot))).result()
    every = list(store.iter_assignments(p.id))
    for lo in (None, 999, 1000, 1003, t - 1, t, t + 5):
        for hi in (None, 999, 1000, 1004, t, t + 1):
            for limit in (3, 100):
                want = [x.nonce for x in every if (lo is None or x.timestamp > lo)
                        and (hi is None or x.timestamp <= hi)][:limit]
                got = store.list_assignments(p.id, from_timestamp=lo, to_timestamp=hi, limit=limit)
                assert [x.nonce for x in got] == want, (lo, hi, limit)
    assert [x.nonce for x in store.list_assignments(p.id, from_timestamp=1000, from_nonce=30, limit=2)] == [31, 32]
    assert store.list_assignments("Q" * 43, from_timestamp=1) == []


def test_group_commit_window_waits_only_under_load(tmp_path):
    """A small batch after a large one waits once for company; a wait that gained nothing stops
    the waiting, so a lone client is not delayed; every write still commits in order."""
    store = SQLiteStore(tmp_path / "log.sqlite", commit_window=0.05, commit_min=2)
    try:
        p = build_process(ALICE, "M" * 43, SU.address)
        _warm(store, p, n=2)
        assert store.stats["window_waits"] == 0          # one at a time: never waited
        burst = [store.schedule(_request(p, build_message(ALICE, p.id, data=f"b{i}"))) for i in range(40)]
        assert [f.result()[0].nonce for f in burst] == list(range(3, 43))
        assert store.stats["max_batch"] >= 2
        store.schedule(_request(p, build_message(ALICE, p.id, data="alone"))).result()
        waits = store.stats["window_waits"]
        assert waits >= 1                                # after a batch of several, a lone write waited
        for i in range(5):
            store.schedule(_request(p, build_message(ALICE, p.id, data=f"seq {i}"))).result()
        assert store.stats["window_waits"] == waits      # ...gained nothing, so the next ones do not
        _chain_ok(store, p, 49)
    finally:
        store.close()


# Schema 3 as earlier aonet versions created it (data for the migration test).
_SCHEMA_3_ASSIGNMENTS = """
CREATE TABLE assignments (
    id TEXT NOT NULL UNIQUE, process_id TEXT NOT NULL, nonce INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    block_height INTEGER NOT NULL, hash_chain TEXT NOT NULL, message_id TEXT NOT NULL,
    with_message INTEGER NOT NULL, dedup TEXT, raw BLOB NOT NULL,
    UNIQUE (process_id, nonce), UNIQUE (message_id, process_id));
CREATE UNIQUE INDEX assignments_dedup ON assignments(process_id, dedup) WHERE dedup IS NOT NULL;
CREATE TABLE tags (item_seq INTEGER NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX tags_name_value ON tags(name, value, item_seq);
"""


def test_a_schema_3_log_is_migrated_on_open(tmp_path):
    """A log written by schema 3 opens as schema 4 with every slot, tag and lookup intact, and goes on."""
    path = tmp_path / "log.sqlite"
    p = build_process(ALICE, "M" * 43, SU.address)
    msgs = [build_message(ALICE, p.id, data=f"m{i}", tags=[("Color", ["red", "blue"][i % 2])]) for i in range(4)]
    with SQLiteStore(path) as s:
        s.schedule(_request(p, p, new_process=True)).result()
        first = [s.schedule(_request(p, m, dedup=("d" * 43 if i == 2 else None))).result()[0]
                 for i, m in enumerate(msgs)]
    db = sqlite3.connect(path, isolation_level=None)          # rewrite it the way schema 3 stored it
    db.execute("ALTER TABLE assignments RENAME TO a4")
    db.execute("ALTER TABLE tags RENAME TO t4")
    db.execute("DROP INDEX assignments_dedup")
    db.executescript(_SCHEMA_3_ASSIGNMENTS)
    db.execute("INSERT INTO assignments SELECT id, process_id, nonce, timestamp, block_height, hash_chain, "
               "message_id, with_message, dedup, raw FROM a4 ORDER BY rowid")
    db.execute("INSERT INTO tags SELECT item_seq, name, value FROM t4")
    db.executescript("DROP TABLE a4; DROP TABLE t4; UPDATE meta SET value='3' WHERE key='schema';")
    db.close()

    with SQLiteStore(path) as s:
        db = sqlite3.connect(path)
        assert "message_seq" in [r[1] for r in db.execute("PRAGMA table_info(assignments)")]
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("4",)
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE '%_old'").fetchone() == (0,)
        db.close()
        _chain_ok(s, p, 5)
        found = s.find_assignment(msgs[1].id, p.id)
        assert (found.id, found.nonce, found.message_raw) == (first[1].id, 2, msgs[1].raw)
        assert s.find_assignment(first[3].id).nonce == 4                         # by assignment id
        assert [i.id for i in s.query_items(tags=[("Color", ["red"])]).items] == [msgs[2].id, msgs[0].id]
        assert s.find_dedup(p.id, "d" * 43) == msgs[2].id
        again, created = s.schedule(_request(p, msgs[3])).result()              # idempotent after migration
        assert (again.id, created) == (first[3].id, False)
        nxt, created = s.schedule(_request(p, build_message(ALICE, p.id, data="after"))).result()
        assert created and nxt.nonce == 5
        _chain_ok(s, p, 6)
    with SQLiteStore(path) as s:                                                 # a second open: nothing to do
        _chain_ok(s, p, 6)


def test_only_stored_items_can_be_assigned(store):
    """A slot names its message by the item's place in the log: an id that is not a stored item
    (here an assignment's) is refused, nothing is written."""
    p = build_process(ALICE, "M" * 43, SU.address)
    store.schedule(_request(p, p, new_process=True)).result()
    a, _ = store.schedule(_request(p, build_message(ALICE, p.id, data="x"))).result()
    from aonet.store import ScheduleRequest

    def build(head):
        slot = core.next_slot(head, p.id, 10, 1)
        return ScheduleWrite(core.build_assignment(SU, slot, a.id, with_message=False), None, None, None)
    with pytest.raises(StoreConflict, match="only stored data items can be assigned"):
        store.schedule(ScheduleRequest(p.id, a.id, build)).result()
    assert store.latest_assignment(p.id).nonce == 1
