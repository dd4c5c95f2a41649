"""The SU over real HTTP on loopback: concurrent clients, parallel processes, idempotent retries."""
from concurrent.futures import ThreadPoolExecutor

import httpx

from aonet.protocol import build_message, build_process
from aonet.su import verify_chain
from aonet.wallet import Wallet

USER = Wallet.generate("ed25519")


def test_concurrent_clients_over_http(su_thread):
    su = su_thread
    procs = [build_process(USER, "M" * 43, su.wallet.address, tags=[("Name", str(i))]) for i in range(4)]
    msgs = [build_message(USER, procs[i % 4].id, data=str(i)) for i in range(120)]
    with httpx.Client(base_url=su.url, timeout=30) as c:
        for p in procs:
            assert c.post("/", content=p.raw).status_code == 200

    def post(raw):
        with httpx.Client(base_url=su.url, timeout=30) as c:
            return [c.post("/", content=r) for r in raw]
    chunks = [[m.raw for m in msgs[i::8]] + [m.raw for m in msgs[i:i + 3]] for i in range(8)]  # with re-posts
    with ThreadPoolExecutor(8) as pool:
        responses = [r for rs in pool.map(post, chunks) for r in rs]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    with httpx.Client(base_url=su.url, timeout=30) as c:
        for p in procs:
            edges = c.get(f"/{p.id}", params={"process-id": p.id, "limit": "1000"}).json()["edges"]
            nonces = [int(e["cursor"]) for e in c.get(f"/{p.id}", params={"from-nonce": "-1"}).json()["edges"]]
            assert nonces == list(range(31)) and len(edges) == 31
            assert verify_chain(su.store, p.id, signer_address=su.wallet.address).ok
