"""Crash safety: SIGKILL the SU mid-stream; every acknowledged item survives with its nonce.

A real `python -m aonet.su` subprocess takes concurrent posts from several threads on several
processes; we kill -9 it while they are in flight, restart it on the same data directory and check:
each 200 is in the log at the nonce the log gives it, nonces have no gap and no duplicate, and the
hash chain verifies end to end (library call and CLI).
"""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from aonet.protocol import build_message, build_process
from aonet.store import SQLiteStore
from aonet.su import verify_chain
from aonet.wallet import Wallet
from fixtures_su import ROOT, SUProcess

USER = Wallet.generate("ed25519")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_keeps_every_acknowledged_item(tmp_path, workers):
    data = tmp_path / "su"
    extra = ("--workers", str(workers))
    su = SUProcess(data, extra_args=extra).start()
    assert len(su.workers()) == (workers if workers > 1 else 0)
    acked: dict[str, str] = {}          # message id -> process id
    procs = [build_process(USER, "M" * 43, su.address, tags=[("Name", str(i))]) for i in range(4)]
    with httpx.Client(base_url=su.url) as c:
        for p in procs:
            assert c.post("/", content=p.raw).status_code == 200
    msgs = [build_message(USER, procs[i % 4].id, data=f"crash {i}") for i in range(4000)]
    lock = threading.Lock()
    stop = threading.Event()

    def client(k: int) -> None:
        with httpx.Client(base_url=su.url, timeout=5) as c:
            for m in msgs[k::6]:
                if stop.is_set():
                    return
                try:
                    r = c.post("/", content=m.raw)
                except httpx.HTTPError:
                    return                                  # the SU died: unacknowledged
                if r.status_code == 200:
                    with lock:
                        acked[m.id] = m.target_id
    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    [t.start() for t in threads]
    deadline = time.monotonic() + 20
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    su.kill()
    stop.set()
    [t.join() for t in threads]
    assert 300 <= len(acked) < len(msgs)             # killed mid-stream

    store = SQLiteStore(data / "aonet.sqlite")
    try:
        for p in procs:
            report = verify_chain(store, p.id, signer_address=su.address)
            assert report.ok, report.errors[:5]
            nonces = [a.nonce for a in store.iter_assignments(p.id)]
            assert nonces == list(range(len(nonces)))
        for mid, pid in acked.items():
            a = store.find_assignment(mid, pid)
            assert a is not None, f"acknowledged {mid} lost"
            assert a.message_raw is not None
    finally:
        store.close()

    # restart on the same data: the chain continues where the log ends
    su = SUProcess(data, port=su.port, extra_args=extra).start()
    try:
        with httpx.Client(base_url=su.url) as c:
            for m in msgs[:50]:                         # re-posting returns original slots, no new nonce
                assert c.post("/", content=m.raw).status_code == 200
            latest = c.get(f"/{procs[0].id}/latest").json()
            before = int(latest["assignment"]["tags"][2]["value"])
            fresh = build_message(USER, procs[0].id, data="after restart")
            assert c.post("/", content=fresh.raw).status_code == 200
            after = c.get(f"/{fresh.id}", params={"process-id": procs[0].id}).json()
            assert after["assignment"]["tags"][2]["value"] == str(before + 1)
    finally:
        su.stop()
    cli = subprocess.run([sys.executable, "-m", "aonet.su", "verify-chain", str(data)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(Path(ROOT) / "src")})
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.count(": OK") == 4
