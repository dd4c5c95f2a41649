"""In-process links between units of one devnet process (aonet.links) answer as their HTTP routes do.

The devnet here runs every unit in one process, so its CU reads the SU in-process, the MU pushes to
the SU's service and pulls from the CU's; the same questions asked over HTTP must get the same
answers. A second devnet with `links=False` runs a cascade over HTTP only, so that path stays covered.
"""
from __future__ import annotations

import asyncio
import pickle
import secrets
import threading

import anyio.to_thread
import httpx
import pytest

from aonet.cu.errors import NotFound
from aonet.cu.sources import SUClient
from aonet.links import LocalCU, LocalSU, LocalSUClient
from aonet.mu.worker import PermanentError, TaskError
from aonet.protocol import build_message, build_process
from aonet.wallet import Wallet
from fixtures_devnet import mu_post as post, spawn_pingpong as spawn

HTTP = httpx.Client(timeout=60)


@pytest.fixture(scope="module")
def user():
    return Wallet.generate("ed25519")


def send(net, w, pid, action, data=" ", url=None, **tags) -> str:
    m = build_message(w, pid, data=data, anchor=secrets.token_hex(16),
                      tags=[("Action", action), *[(k, str(v)) for k, v in tags.items()]])
    if url is None:
        post(net.mu_url, m)
    else:                                    # straight to the SU: the MU never hears of it
        r = HTTP.post(url, content=m.raw, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
    return m.id


def counters(net, pid) -> dict:
    r = HTTP.post(f"{net.cu_url}/dry-run", params={"process-id": pid},
                  json={"Id": "1234", "Owner": "1234", "Target": pid, "Data": "1234", "Anchor": "0",
                        "Tags": [{"name": "Action", "value": "Count"}, {"name": "Data-Protocol", "value": "ao"},
                                 {"name": "Type", "value": "Message"}, {"name": "Variant", "value": "ao.TN.1"}]})
    assert r.status_code == 200, r.text
    return r.json()["Output"]


def result(net, pid, mid) -> dict:
    r = HTTP.get(f"{net.cu_url}/result/{mid}", params={"process-id": pid})
    assert r.status_code == 200, r.text
    return r.json()


def wait_idle(net, timeout=120.0):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        if HTTP.get(f"{net.mu_url}/health").json()["tasks"].get("pending", 0) == 0:
            return
        time.sleep(0.05)
    raise AssertionError("MU queue did not drain")


@pytest.fixture(scope="module")
def populated(devnet, user):
    """A process with 12 messages, all evaluated."""
    pid = spawn(devnet, user)
    mids = [send(devnet, user, pid, "Hit") for _ in range(12)]
    result(devnet, pid, mids[-1])
    return pid, mids


def test_devnet_units_are_linked(devnet):
    assert isinstance(devnet.cu.su, LocalSUClient)
    assert set(devnet.mu.crank.local_sus) == {devnet.su_url.rstrip("/")}
    assert devnet.mu.crank.local_cu is not None


def test_local_su_client_answers_as_http(devnet, populated):
    pid, mids = populated
    local, remote = LocalSUClient(devnet.su_service, devnet.su_url), SUClient(devnet.su_url)
    try:
        assert local.process(pid) == remote.process(pid)
        for mid in (mids[0], mids[5]):
            node = remote.message(mid, pid)
            assert local.message(mid, pid) == node
            aid = node["assignment"]["id"]                     # found by assignment id too
            assert local.message(aid, pid) == remote.message(aid, pid)
        for kw in ({"from_nonce": -1, "limit": 5}, {"from_nonce": 3, "to_nonce": 8, "limit": 100},
                   {"to_ts": 0, "from_nonce": -1}, {}):
            assert local.page(pid, **kw) == remote.page(pid, **kw)
        for kw in ({"after_nonce": -1, "limit": 4}, {"after_nonce": 2, "to_nonce": 9, "limit": 3},
                   {"after_nonce": 5, "prefetch": False, "limit": 2}):
            assert list(local.nodes(pid, **kw)) == list(remote.nodes(pid, **kw))
        ts, height = local.timestamp()
        rts, rheight = remote.timestamp()
        assert abs(ts - rts) < 60_000 and abs(height - rheight) <= 1
        for fn in (lambda c: c.process("Q" * 43), lambda c: c.message("Q" * 43, pid),
                   lambda c: list(c.nodes("Q" * 43, after_nonce=-1))):
            for client in (local, remote):
                with pytest.raises(NotFound):
                    fn(client)
    finally:
        remote.close()


def test_local_su_client_pickles_as_http_client(devnet):
    local = LocalSUClient(devnet.su_service, devnet.su_url)
    copy = pickle.loads(pickle.dumps(local))
    assert type(copy) is SUClient and copy.url == devnet.su_url.rstrip("/")


def test_cu_knows_new_slots_without_asking_the_su(devnet, user):
    pid = spawn(devnet, user)
    mid = send(devnet, user, pid, "Hit")
    node = devnet.su_service.store.find_assignment(mid, pid)
    assert devnet.cu._slots[(pid, mid)] == node.nonce == 1
    assert devnet.cu._slots[(pid, node.id)] == 1
    assert result(devnet, pid, mid)["Output"]


def test_concurrent_results_share_one_evaluation(devnet, user):
    pid = spawn(devnet, user)
    wait_idle(devnet)
    mid = send(devnet, user, pid, "Hit", url=devnet.su_url)       # no MU pull racing the two below
    cu = devnet.cu
    before = dict(cu.metrics)

    async def both():
        return await asyncio.gather(cu.result(mid, pid), cu.result(mid, pid))

    one, two = devnet.call(both())
    assert one is two and one["Output"]
    assert cu.metrics["evaluations"] == before["evaluations"] + 1
    assert cu.metrics["coalesced"] >= before["coalesced"] + 1
    assert result(devnet, pid, mid)["Output"] == one["Output"]


def test_local_su_refuses_as_http(devnet, user):
    svc = devnet.su_service
    stray = build_message(user, "Q" * 43, anchor=secrets.token_hex(16), tags=[("Action", "Hit")])

    async def push_both():
        errors = []
        for push in (LocalSU(svc).push(stray), _http_crank(devnet).push(devnet.su_url, stray)):
            try:
                await push
            except (PermanentError, TaskError) as exc:
                errors.append(type(exc))
        return errors

    assert devnet.call(push_both()) == [PermanentError, PermanentError]     # unknown process: 404
    big = LocalSU(svc, max_item_size=10)
    with pytest.raises(PermanentError, match="413"):
        devnet.call(big.push(stray))


def _http_crank(devnet):
    """The devnet MU's crank, minus its links (what a MU in another process does)."""
    import copy
    crank = copy.copy(devnet.mu.crank)
    crank.local_sus, crank.local_cu = {}, None
    return crank


def test_local_cu_errors_are_retryable(devnet):
    with pytest.raises(TaskError, match="404"):
        devnet.call(LocalCU(devnet.cu).result("Q" * 43, "R" * 43))


def test_cascade_over_http_only(make_devnet, user):
    net = make_devnet(links=False)
    assert type(net.cu.su) is SUClient and not net.mu.crank.local_sus and net.mu.crank.local_cu is None
    a, b = spawn(net, user), spawn(net, user)
    sinks = [spawn(net, user) for _ in range(3)]
    fan = spawn(net, user)
    send(net, user, a, "Start", Peer=b, Rounds=20)
    send(net, user, fan, "Fan", data=",".join(sinks), N=30)
    wait_idle(net)
    assert counters(net, a)["pings"] == 10 and counters(net, b)["pings"] == 10
    assert [counters(net, s)["hits"] for s in sinks] == [10, 10, 10]


def test_background_devnet_reuses_worker_threads(devnet):
    """anyio stops its worker threads when their root task ends: the devnet's loop must have one."""
    async def thread_of_new_task():
        return await asyncio.ensure_future(anyio.to_thread.run_sync(threading.current_thread))

    threads = [devnet.call(thread_of_new_task()) for _ in range(10)]
    assert len({id(t) for t in threads}) <= 2



def _tag_values(net, sink, sender, name, **match) -> list[int]:
    """Tag `name` of the messages `sender` pushed to `sink` (with tags `match`), in schedule order."""
    r = HTTP.get(f"{net.su_url}/{sink}", params={"process-id": sink, "limit": "10000"})
    assert r.status_code == 200, r.text
    out = []
    for e in r.json()["edges"][1:]:
        tags = {t["name"]: t["value"] for t in e["node"]["message"]["tags"]}
        if tags.get("From-Process") == sender and all(tags.get(k) == v for k, v in match.items()):
            out.append(int(tags[name]))
    return out


def test_pipelined_pushes_keep_outbox_order(devnet, user):
    """A target's pushes go one after another while results are pulled meanwhile: the log keeps the
    outbox order, and results of one process enqueue their outboxes in the order of their pushes."""
    sinks = [spawn(devnet, user) for _ in range(2)]
    fan, lone, peer = spawn(devnet, user), spawn(devnet, user), spawn(devnet, user)
    wait_idle(devnet)
    send(devnet, user, fan, "Fan", data=",".join(sinks), N=40)
    for rounds in range(1, 7):                  # six results of `lone`, pulled together
        send(devnet, user, lone, "Start", Peer=peer, Rounds=rounds)
    wait_idle(devnet)
    assert _tag_values(devnet, sinks[0], fan, "Seq") == list(range(0, 40, 2))
    assert _tag_values(devnet, sinks[1], fan, "Seq") == list(range(1, 40, 2))
    assert _tag_values(devnet, peer, lone, "Rounds", Count="1") == [1, 2, 3, 4, 5, 6]


def test_local_push_needs_no_http(devnet, user):
    """The devnet MU reaches its SU without a socket: with its HTTP client closed, pushes still land."""
    import copy
    crank = copy.copy(devnet.mu.crank)
    pid = spawn(devnet, user)
    m = build_message(user, pid, anchor=secrets.token_hex(16), tags=[("Action", "Hit")])

    async def push_closed():
        crank.http = httpx.AsyncClient()
        await crank.http.aclose()
        return await crank.push(devnet.su_url, m)

    assert devnet.call(push_closed())["id"] == m.id
    assert devnet.su_service.store.find_assignment(m.id, pid).nonce == 1


def test_separate_processes_talk_http(tmp_path, unit_wallets):
    """`--separate`: no unit shares a process, so everything goes over HTTP (and the Lua module id
    the gateway published reaches the caller)."""
    from fixtures_devnet import seed
    from aonet.node import NodeConfig, start_background
    net = start_background(NodeConfig(data_dir=seed(tmp_path / "sep", unit_wallets), port=0, separate=True,
                                      modules=("lua",), write_config=False))
    try:
        assert set(net.modules) == {"lua"}
        w = Wallet.generate("ed25519")
        p = build_process(w, net.modules["lua"], net.scheduler, anchor=secrets.token_hex(16))
        post(net.mu_url, p)
        m = build_message(w, p.id, data="return 1 + 2", anchor=secrets.token_hex(16), tags=[("Action", "Eval")])
        post(net.mu_url, m)
        assert result(net, p.id, m.id)["Output"]["data"] == "3"
    finally:
        net.stop()
