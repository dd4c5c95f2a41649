"""Several SU processes on one log: the log's write lock, not memory, orders every slot.

Two SUs on one data directory (each its own port, so the test decides which one gets each post) take
concurrent posts for the same processes: nonces must be distinct and consecutive, the hash chain
must verify, a re-post through the other SU must return the original slot, and a pushed message
duplicated through the other SU must be refused. Then `--workers 2` end to end on one port.
"""
import threading

import httpx

from aonet.protocol import build_message, build_process
from aonet.store import SQLiteStore
from aonet.su import verify_chain
from aonet.wallet import Wallet
from fixtures_su import SUProcess

USER = Wallet.generate("ed25519")


def _post_all(urls: list[str], bodies: list[list[bytes]]) -> list[tuple[bytes, int, dict]]:
    """Each thread posts its list over keep-alive, alternating between the SUs; returns (raw, status, json)."""
    out, lock = [], threading.Lock()

    def run(k: int, raws: list[bytes]) -> None:
        clients = [httpx.Client(base_url=u, timeout=30) for u in urls]
        try:
            for i, raw in enumerate(raws):
                r = clients[(k + i) % len(clients)].post("/", content=raw)
                with lock:
                    out.append((raw, r.status_code, r.json()))
        finally:
            for c in clients:
                c.close()
    threads = [threading.Thread(target=run, args=(k, b)) for k, b in enumerate(bodies)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return out


def _check_log(data, procs, su_address, expected: dict[str, set[str]]) -> None:
    store = SQLiteStore(data / "aonet.sqlite")
    try:
        for p in procs:
            report = verify_chain(store, p.id, signer_address=su_address)
            assert report.ok, report.errors[:5]
            slots = list(store.iter_assignments(p.id))
            assert [a.nonce for a in slots] == list(range(len(slots)))           # distinct, consecutive
            assert {a.message_id for a in slots[1:]} == expected[p.id]            # each message exactly once
            assert len(slots) == len(expected[p.id]) + 1
    finally:
        store.close()


def test_two_sus_on_one_log_order_concurrent_posts(tmp_path):
    data = tmp_path / "su"
    a = SUProcess(data).start()
    b = SUProcess(data).start()
    try:
        procs = [build_process(USER, "M" * 43, a.address, tags=[("Name", str(i))]) for i in range(2)]
        with httpx.Client(base_url=a.url) as c:
            for p in procs:
                assert c.post("/", content=p.raw).status_code == 200
        assert httpx.post(b.url + "/", content=procs[0].raw).status_code == 200      # re-post via B: slot 0
        msgs = [build_message(USER, procs[i % 2].id, data=f"w{i}") for i in range(240)]
        pushed = build_message(USER, procs[0].id, data="pushed", tags=[("From-Process", "F" * 43)])
        pushed_again = build_message(Wallet.generate("ed25519"), procs[0].id, data="pushed",
                                     tags=[("From-Process", "F" * 43), ("Pushed-For", "X" * 43)])
        bodies = [[m.raw for m in msgs[k::8]] for k in range(8)]
        bodies[0] += [m.raw for m in msgs[:20]]            # re-posts, through whichever SU comes next
        bodies[1] += [m.raw for m in msgs[:20]]
        results = _post_all([a.url, b.url], bodies)
        assert all(status == 200 for _, status, _ in results), [r for r in results if r[1] != 200][:3]
        ids = {m.raw: m.id for m in msgs}
        assert all(body["id"] == ids[raw] for raw, _, body in results)
        assert httpx.post(a.url + "/", content=pushed.raw).status_code == 200
        dup = httpx.post(b.url + "/", content=pushed_again.raw)
        assert dup.status_code == 409 and "duplicates message" in dup.json()["error"]
        # both SUs served slots, and their heads stayed in step: a fresh post continues the chain
        late = build_message(USER, procs[1].id, data="late")
        assert httpx.post(b.url + "/", content=late.raw).status_code == 200
        node = httpx.get(f"{a.url}/{late.id}", params={"process-id": procs[1].id}).json()
        assert node["assignment"]["tags"][2] == {"name": "Nonce", "value": "121"}
    finally:
        a.stop()
        b.stop()
    expected = {p.id: {m.id for m in msgs if m.target_id == p.id} for p in procs}
    expected[procs[0].id].add(pushed.id)
    expected[procs[1].id].add(late.id)
    _check_log(data, procs, a.address, expected)


def test_workers_share_one_port(tmp_path):
    data = tmp_path / "su"
    su = SUProcess(data, extra_args=("--workers", "2")).start()
    try:
        assert len(su.workers()) == 2
        procs = [build_process(USER, "M" * 43, su.address, tags=[("Name", str(i))]) for i in range(3)]
        with httpx.Client(base_url=su.url) as c:
            for p in procs:
                assert c.post("/", content=p.raw).status_code == 200
        msgs = [build_message(USER, procs[i % 3].id, data=f"x{i}") for i in range(180)]
        results = _post_all([su.url], [[m.raw for m in msgs[k::12]] + [msgs[k].raw] for k in range(12)])
        assert all(status == 200 for _, status, _ in results)
        page = httpx.get(f"{su.url}/{procs[0].id}", params={"from-nonce": "-1", "limit": "1000"}).json()
        assert [int(e["cursor"]) for e in page["edges"]] == list(range(61))
        assert httpx.get(f"{su.url}/{procs[1].id}/verify").json()["ok"] is True
    finally:
        su.stop()
    assert su.proc.returncode == 0
    _check_log(data, procs, su.address, {p.id: {m.id for m in msgs if m.target_id == p.id} for p in procs})
