"""The SU shell without HTTP: concurrency, idempotency under races, equal-timestamp pagination."""
import asyncio

import pytest

from aonet.protocol import build_message, build_process
from aonet.store import SQLiteStore, StoreError
from aonet.su import SchedulerService, verify_chain
from aonet.su.core import parse_item
from aonet.wallet import Wallet

SU = Wallet.generate("ed25519")
USER = Wallet.generate("ed25519")


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "s.sqlite")
    yield s
    s.close()


def test_concurrent_posts_get_consecutive_nonces(store):
    svc = SchedulerService(store, SU)
    procs = [build_process(USER, "M" * 43, SU.address, tags=[("Name", str(i))]) for i in range(3)]
    msgs = [build_message(USER, procs[i % 3].id, data=str(i)) for i in range(90)]

    async def main():
        for p in procs:
            await svc.schedule_item(p)
        results = await asyncio.gather(*(svc.schedule_item(parse_item(m.raw)) for m in msgs),
                                       *(svc.schedule_item(m) for m in msgs[:30]))   # racing re-posts
        return results
    results = asyncio.run(main())
    first, reposts = results[:90], results[90:]
    assert all(r.created for r in first) and not any(r.created for r in reposts)
    assert [r.assignment.id for r in reposts] == [r.assignment.id for r in first[:30]]
    for p in procs:
        nonces = sorted(r.assignment.nonce for r in first if r.assignment.process_id == p.id)
        assert nonces == list(range(1, 31))
        assert verify_chain(store, p.id, signer_address=SU.address).ok
    assert store.stats["max_batch"] > 1            # group commit happened


def test_equal_timestamps_never_split_across_pages(store):
    svc = SchedulerService(store, SU, clock=lambda: 5_000)    # every slot in the same millisecond
    p = build_process(USER, "M" * 43, SU.address)

    async def main():
        await svc.schedule_item(p)
        for i in range(9):
            await svc.schedule_item(build_message(USER, p.id, data=str(i)))
    asyncio.run(main())
    page, more = svc.page(p.id, limit=3)
    assert len(page) == 10 and not more          # the group fills the page: completed in this one
    svc2 = SchedulerService(store, SU, clock=lambda: 6_000)
    asyncio.run(svc2.schedule_item(build_message(USER, p.id, data="later")))
    page, more = svc2.page(p.id, limit=3)
    assert len(page) == 10 and more
    page, more = svc2.page(p.id, from_timestamp=5_000, limit=3)
    assert [a.nonce for a in page] == [10] and not more
    page, more = svc2.page(p.id, from_nonce=-1, limit=3)    # nonce cursors cut exactly at the limit
    assert [a.nonce for a in page] == [0, 1, 2] and more


def test_failed_commit_is_not_acknowledged_and_chain_recovers(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    svc = SchedulerService(store, SU)
    p = build_process(USER, "M" * 43, SU.address)
    asyncio.run(svc.schedule_item(p))
    store.close()                                  # the log goes away: writes must fail, not ack
    with pytest.raises(StoreError):
        asyncio.run(svc.schedule_item(build_message(USER, p.id, data="lost")))
    store2 = SQLiteStore(tmp_path / "s.sqlite")
    svc2 = SchedulerService(store2, SU)
    r = asyncio.run(svc2.schedule_item(build_message(USER, p.id, data="next")))
    assert r.assignment.nonce == 1 and verify_chain(store2, p.id).ok
    store2.close()


def test_verify_chain_detects_tampering(store):
    svc = SchedulerService(store, SU)
    p = build_process(USER, "M" * 43, SU.address)

    async def main():
        await svc.schedule_item(p)
        for i in range(3):
            await svc.schedule_item(build_message(USER, p.id, data=str(i)))
    asyncio.run(main())
    assert verify_chain(store, p.id, signer_address=SU.address).ok
    assert not verify_chain(store, p.id, signer_address=USER.address).ok
    import sqlite3
    conn = sqlite3.connect(store.path)
    conn.execute("DELETE FROM assignments WHERE process_id=? AND nonce=2", (p.id,))
    conn.commit()
    report = verify_chain(store, p.id)
    assert not report.ok and any("expected 2" in e for e in report.errors)
    assert not verify_chain(store, "A" * 43).ok


@pytest.mark.parametrize("sign_in_thread", [False, True])
def test_slots_built_ahead_only_when_signing_is_cheap(store, sign_in_thread):
    """Ed25519 slots are signed ahead on the caller's thread; slow signers (RSA) sign in the writer."""
    svc = SchedulerService(store, SU, sign_in_thread=sign_in_thread)
    proc = build_process(USER, "M" * 43, SU.address)

    async def main():
        await svc.schedule_item(proc)
        for i in range(12):
            await svc.schedule_item(build_message(USER, proc.id, data=str(i)))
    asyncio.run(main())
    assert (store.stats["prebuilt"] > 0) is not sign_in_thread
    assert verify_chain(store, proc.id, signer_address=SU.address).ok
