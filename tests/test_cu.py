"""The Compute Unit against a real SU on loopback: results, errors, dry-run, state, checkpoints,
verification between two CUs, runaway processes, signatures."""
import contextlib
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_su import SUThread, free_port  # noqa: E402

from aonet.cu.app import create_cu_app  # noqa: E402
from aonet.cu.core import (ChainState, UnitLimits, first_hash_chain, map_node,  # noqa: E402
                           next_hash_chain)
from aonet.cu.errors import ChainError, NotFound, UpstreamError  # noqa: E402
from aonet.cu.signing import ResultSignatureError, verify_result_signature  # noqa: E402
from aonet.cu.sources import GatewayModuleSource, StaticModuleSource, StoreModuleSource, SUClient  # noqa: E402
from aonet.cu.storage import EVALUATED_BEFORE, RESULT_BY_MESSAGE, CUStorage, ResultRow  # noqa: E402
from aonet.encoding import b64url_encode  # noqa: E402
from aonet.cu.verify import verify_process  # noqa: E402
from aonet.protocol import build_message, build_module, build_process  # noqa: E402
from aonet.store.sqlite import SQLiteStore  # noqa: E402
from aonet.vm.build import build_c_module  # noqa: E402
from aonet.wallet import Wallet  # noqa: E402

from starlette.testclient import TestClient  # noqa: E402

MODULES = Path(__file__).parent / "modules"


@pytest.fixture(scope="module")
def counter_wasm() -> bytes:
    return build_c_module(MODULES / "counter.c")


@pytest.fixture(scope="module")
def net(tmp_path_factory, counter_wasm):
    """An SU on loopback with its store, a user wallet and a published counter module."""
    tmp = tmp_path_factory.mktemp("cu")
    store = SQLiteStore(tmp / "su.sqlite")
    su_wallet, user = Wallet.generate("ed25519"), Wallet.generate("ed25519")
    module = build_module(user, counter_wasm, memory_limit="16-mb", compute_limit=20_000_000)
    store.put_item(module)
    with SUThread(store, su_wallet) as su:
        su.user, su.module, su.tmp, su.su_wallet = user, module, tmp, su_wallet
        yield su
    store.close()


def post(su, item) -> str:
    r = httpx.post(su.url + "/", content=item.raw, timeout=30)
    assert r.status_code == 200, r.text
    return item.id


def spawn(su, tags=()) -> str:
    """A new process (the unique tag: Ed25519 signatures are deterministic, so equal items share an id)."""
    return post(su, build_process(su.user, su.module.id, su.su_wallet.address,
                                  tags=[*tags, ("Unique", uuid.uuid4().hex)]))


def send(su, pid, action, **tags) -> str:
    return post(su, build_message(su.user, pid, tags=[("Action", action), *tags.items(), ("Unique", uuid.uuid4().hex)]))


def cu_client(su, name, **kw) -> TestClient:
    modules = kw.pop("modules", StoreModuleSource(su.store))
    app = create_cu_app(data_dir=su.tmp / name, su_url=su.url, modules=modules,
                        wallet=kw.pop("wallet", None) or Wallet.generate("ed25519"), **kw)
    return TestClient(app)


def result(c, mid, pid):
    r = c.get(f"/result/{mid}", params={"process-id": pid})
    assert r.status_code == 200, r.text
    return r.json()


def test_results_errors_and_signatures(net):
    pid = spawn(net)
    ids = [send(net, pid, "Increment", By=str(n)) for n in (1, 2, 3)]
    fail = send(net, pid, "Fail")
    trap = send(net, pid, "Trap")
    get = send(net, pid, "Get")
    with cu_client(net, "cu-a") as c:
        assert result(c, pid, pid)["Output"] == "unknown action"       # the Process message itself
        assert [result(c, m, pid)["Output"] for m in ids] == [{"count": 1}, {"count": 3}, {"count": 6}]
        assert result(c, fail, pid)["Error"] == "asked to fail"
        assert "Error" in result(c, trap, pid)
        assert result(c, get, pid)["Output"] == {"count": 6}      # failed messages left the state alone
        r = c.get(f"/result/{get}", params={"process-id": pid})
        address = c.get("/").json()["address"]
        assert verify_result_signature(r.content, r.headers, f"/result/{get}?process-id={pid}",
                                       expected_address=address) == address
        with pytest.raises(ResultSignatureError):
            verify_result_signature(r.content.replace(b"6", b"7"), r.headers)
        with pytest.raises(ResultSignatureError):
            verify_result_signature(r.content, r.headers, f"/result/{ids[0]}?process-id={pid}")
        page = c.get(f"/results/{pid}", params={"limit": 2}).json()
        assert page["pageInfo"]["hasNextPage"] is True and len(page["edges"]) == 2
        rest = c.get(f"/results/{pid}", params={"from": page["edges"][-1]["cursor"], "limit": 100}).json()
        outputs = [e["node"]["Output"] for e in page["edges"] + rest["edges"]]
        assert outputs == ["unknown action", {"count": 1}, {"count": 3}, {"count": 6}, {"count": 6}]  # errors omitted
        desc = c.get(f"/results/{pid}", params={"sort": "DESC", "limit": 1}).json()
        assert desc["edges"][0]["node"]["Output"] == {"count": 6}


def test_bad_input(net):
    pid = spawn(net)
    with cu_client(net, "cu-bad") as c:
        assert c.get(f"/result/{'x' * 43}", params={"process-id": pid}).status_code == 404
        r = c.get(f"/result/{pid}", params={"process-id": "y" * 43})
        assert r.status_code == 404 and "error" in r.json()
        assert c.get(f"/result/{pid}").status_code == 400
        assert c.post("/dry-run", params={"process-id": pid}, content=b"{nope").status_code == 400
        assert c.post("/dry-run", params={"process-id": pid}, json={"Tags": "x"}).status_code == 400
        assert c.post("/dry-run", params={"process-id": pid}, json=[1]).status_code == 400
        assert c.get(f"/results/{pid}", params={"sort": "UP"}).status_code == 400
        assert c.get(f"/results/{pid}", params={"limit": "many"}).status_code == 400
    with cu_client(net, "cu-small", unit_limits=UnitLimits(max_memory=8 << 20)) as c:
        r = c.get(f"/result/{pid}", params={"process-id": pid})
        assert r.status_code == 413 and "Memory-Limit" in r.json()["error"]
    big = spawn(net, [("Compute-Limit", str(10 ** 13))])
    with cu_client(net, "cu-big") as c:
        assert c.get(f"/result/{big}", params={"process-id": big}).status_code == 413


def test_dry_run_and_state_do_not_persist(net):
    pid = spawn(net)
    send(net, pid, "Increment", By="5")
    with cu_client(net, "cu-dry") as c:
        r = c.post("/dry-run", params={"process-id": pid},
                   json={"Owner": net.user.address, "Tags": [{"name": "Action", "value": "Increment"},
                                                             {"name": "By", "value": "100"}]})
        assert r.status_code == 200 and r.json()["Output"] == {"count": 105}
        get = send(net, pid, "Get")
        assert result(c, get, pid)["Output"] == {"count": 5}
        s1 = c.get(f"/state/{pid}")
        assert s1.status_code == 200 and s1.headers["content-type"] == "application/octet-stream"
        assert int(s1.headers["last-ordinate"]) == 2
        verify_result_signature(s1.content, s1.headers, f"/state/{pid}")


def test_checkpoints_resume_and_two_cus_agree(net):
    pid = spawn(net, [("Cron-Interval", "1-second"), ("Cron-Tag-Action", "Increment")])
    ids = [send(net, pid, "Increment", By=str(n)) for n in range(12)]
    opts = {"checkpoint_every": 4}
    with cu_client(net, "cu-ck", engine_options=opts) as c:
        last = result(c, ids[-1], pid)
        cu = c.app.state.cu
        assert cu.storage.checkpoint_count(pid) >= 1
    time.sleep(1.2)
    more = send(net, pid, "Increment", By="1000")
    with cu_client(net, "cu-ck", engine_options=opts) as c:     # restart on the same data dir
        after = result(c, more, pid)
        eng = c.app.state.cu.backend.engine
        assert eng.stats["restores"] == 1 and eng.stats["cold_starts"] == 0
    assert after["Output"]["count"] >= last["Output"]["count"] + 1000
    with cu_client(net, "cu-fresh") as c:                       # a second CU from genesis agrees
        assert result(c, more, pid) == after
    # verification against a running CU over HTTP
    import uvicorn
    from fixtures_su import free_port
    app = create_cu_app(data_dir=net.tmp / "cu-ck", su_url=net.url, modules=StoreModuleSource(net.store),
                        engine_options=opts)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        rep = verify_process(pid, su_url=net.url, cu_url=f"http://127.0.0.1:{port}",
                             modules=StoreModuleSource(net.store))
        assert rep.ok, rep.mismatches
        assert rep.results_compared >= 13
    finally:
        server.should_exit = True
        t.join(timeout=10)


def test_runaway_processes_do_not_block_others(net):
    loop_pid = spawn(net)
    calm_pid = spawn(net)
    loop = send(net, loop_pid, "Loop")
    bomb = send(net, loop_pid, "Bomb")
    after = send(net, loop_pid, "Increment")
    calm = send(net, calm_pid, "Increment", By="7")
    with cu_client(net, "cu-pool", workers=2) as c:
        assert result(c, calm_pid, calm_pid)["Output"] == "unknown action"     # pin calm first
        out = {}

        def runaway():
            out["loop"] = result(c, loop, loop_pid)

        th = threading.Thread(target=runaway)
        th.start()
        assert result(c, calm, calm_pid)["Output"] == {"count": 7}
        th.join(60)
        assert "Error" in out["loop"]
        b = result(c, bomb, loop_pid)
        assert "Error" in b
        assert result(c, after, loop_pid)["Output"] == {"count": 1}


# ---- pure core -------------------------------------------------------------------------------
def test_hash_chain_rules():
    pid = "A" * 43
    aid0, aid1 = "B" * 43, "C" * 43
    h0 = first_hash_chain(pid)
    h1 = next_hash_chain(aid0, h0)

    def node(nonce, aid, chain):
        return {"message": {"id": "M" * 43, "owner": {"address": "o", "key": "k"}, "tags": [
                    {"name": "From", "value": "evil"}, {"name": "Action", "value": "X"}], "data": "d",
                    "signature": "s", "anchor": None, "target": pid},
                "assignment": {"id": aid, "tags": [
                    {"name": "Process", "value": pid}, {"name": "Epoch", "value": "0"},
                    {"name": "Nonce", "value": str(nonce)}, {"name": "Hash-Chain", "value": chain},
                    {"name": "Block-Height", "value": "000000000012"}, {"name": "Timestamp", "value": "1000"}]}}

    chain = ChainState()
    s0 = map_node(node(0, aid0, h0), pid)
    chain.check(s0, pid)
    assert s0.msg["Tags"] == [{"name": "Action", "value": "X"}] and s0.msg["From"] == "o"
    assert s0.msg["Block-Height"] == 12 and s0.msg["Nonce"] == 0 and s0.msg["Target"] == pid
    assert s0.msg["Read-Only"] is False and s0.msg["Cron"] is False
    with pytest.raises(ChainError):
        ChainState(0, aid0, h0).check(map_node(node(1, aid1, h0), pid), pid)
    with pytest.raises(ChainError):
        ChainState(0, aid0, h0).check(map_node(node(2, aid1, h1), pid), pid)
    chain.check(map_node(node(1, aid1, h1), pid), pid)
    assert chain.nonce == 1


# ---- assigned items, the gateway as module/item source, paging, the /result LRU -----------------
@contextlib.contextmanager
def served(app):
    """An ASGI app on a free loopback port (uvicorn in a thread)."""
    import uvicorn
    from fixtures_su import free_port, wait_healthy
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)


@pytest.fixture(scope="module")
def gateway_url(net):
    from aonet.gateway import create_gateway_app
    with served(create_gateway_app(net.store)) as url:
        yield url


@pytest.fixture(scope="module")
def echo_module(net):
    """tests/modules/echo.c: answers {"Output": {"Msg": <msg>, "Env": <env>}}."""
    module = build_module(net.user, build_c_module(MODULES / "echo.c"), memory_limit="16-mb",
                          compute_limit=20_000_000)
    net.store.put_item(module)
    return module


def test_gateway_module_source_reads_what_the_store_holds(net, gateway_url, echo_module):
    pid = spawn(net)
    mid = post(net, build_message(net.user, pid, data="payload \u00e9", anchor="a" * 32,
                                  tags=[("Action", "Increment"), ("Unique", uuid.uuid4().hex)]))
    gw, st = GatewayModuleSource(gateway_url), StoreModuleSource(net.store)
    try:
        for item_id in (echo_module.id, mid, pid):
            assert gw.get(item_id) == st.get(item_id)
        got = gw.get(mid)
        assert got.target == pid and got.anchor == "a" * 32 and got.data == "payload \u00e9".encode()
        with pytest.raises(NotFound):
            gw.get("Q" * 43)
    finally:
        gw.close()
    dead = GatewayModuleSource(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UpstreamError):
        dead.get(mid)


def test_assigned_message_is_hydrated_and_evaluated_by_the_assignee(net, gateway_url, echo_module):
    """A message of process A assigned to process B (`POST /?process-id=B&assign=M`) reaches B's
    module with the item's own fields, Target = its recipient (A), and Excluded fields empty."""
    a = spawn(net)
    b = post(net, build_process(net.user, echo_module.id, net.su_wallet.address,
                                tags=[("Unique", uuid.uuid4().hex)]))
    m = build_message(net.user, a, data="hello", anchor="n" * 32,
                      tags=[("Action", "Ping"), ("Owner", "spoofed"), ("Custom", "1"), ("Unique", uuid.uuid4().hex)])
    post(net, m)
    m2 = build_message(net.user, a, data="secret", tags=[("Action", "Pong"), ("Unique", uuid.uuid4().hex)])
    post(net, m2)
    r = httpx.post(net.url + "/", params={"process-id": b, "assign": m.id}, timeout=30)
    assert r.status_code == 200, r.text
    assignment_id = r.json()["id"]
    r = httpx.post(net.url + "/", params={"process-id": b, "assign": m2.id, "exclude": "Data,Tags"}, timeout=30)
    assert r.status_code == 200, r.text
    c = cu_client(net, "cu-assign", modules=None, gateway_url=gateway_url)
    with c:
        out = result(c, m.id, b)["Output"]
        msg, env = out["Msg"], out["Env"]
        node = httpx.get(f"{net.url}/{m.id}", params={"process-id": b}, timeout=30).json()
        assert node["message"] is None and node["assignment"]["id"] == assignment_id
        chain = {t["name"]: t["value"] for t in node["assignment"]["tags"]}
        user_tags = [{"name": t.name, "value": t.value} for t in m.tags if t.name != "Owner"]
        assert msg == {"Id": m.id, "Signature": b64url_encode(m.signature), "Data": "hello",
                       "Owner": net.user.address, "Anchor": "n" * 32, "Tags": user_tags,
                       "From": net.user.address, "Target": a, "Epoch": 0, "Nonce": 1,
                       "Timestamp": int(chain["Timestamp"]), "Block-Height": int(chain["Block-Height"]),
                       "Hash-Chain": chain["Hash-Chain"], "Cron": False, "Read-Only": False, "Message": m.id}
        assert env["Process"]["Id"] == b and env["Module"]["Id"] == echo_module.id
        excluded = result(c, m2.id, b)["Output"]["Msg"]
        assert excluded["Id"] == m2.id and excluded["Data"] == "" and excluded["Tags"] == []
        assert excluded["Nonce"] == 2 and excluded["Target"] == a
        # A evaluates its own copy as usual: the counter does not know Ping
        assert result(c, m.id, a)["Output"] == "unknown action"


def test_assigned_item_missing_from_the_item_source_is_a_clear_404(net, echo_module):
    a = spawn(net)
    b = post(net, build_process(net.user, echo_module.id, net.su_wallet.address, tags=[("Unique", uuid.uuid4().hex)]))
    mid = send(net, a, "Ping")
    r = httpx.post(net.url + "/", params={"process-id": b, "assign": mid}, timeout=30)
    assert r.status_code == 200, r.text
    with cu_client(net, "cu-assign-missing", modules=StaticModuleSource([echo_module])) as c:
        r = c.get(f"/result/{mid}", params={"process-id": b})
        assert r.status_code == 404 and mid in r.json()["error"]
        assert result(c, b, b)["Output"]["Msg"]["Id"] == b      # nonce 0 still evaluates


def test_su_paging_survives_early_stops_and_stale_connections(tmp_path, net):
    pid = spawn(net)
    for n in range(5):
        send(net, pid, "Increment", By=str(n))
    su = SUClient(net.url)
    try:
        it = su.nodes(pid, after_nonce=-1, limit=2)
        next(it)
        it.close()                                  # a page was requested and never read
        nonces = [map_node(n, pid).nonce for n in su.nodes(pid, after_nonce=-1, limit=2)]
        assert nonces == [0, 1, 2, 3, 4, 5]
        assert [map_node(n, pid).nonce for n in su.nodes(pid, after_nonce=3, limit=2, prefetch=False)] == [4, 5]
        su._pipe._conn.sock.shutdown(socket.SHUT_RDWR)      # our end of the keep-alive connection breaks
        assert [map_node(n, pid).nonce for n in su.nodes(pid, after_nonce=-1, limit=4)] == [0, 1, 2, 3, 4, 5]
        with pytest.raises(NotFound):
            list(su.nodes("Q" * 43, after_nonce=-1))
    finally:
        su.close()
    # the server closes the idle keep-alive connection (here: it restarts on the same port)
    first = SUThread(net.store, net.su_wallet)
    with first:
        su = SUClient(first.url)
        assert len(list(su.nodes(pid, after_nonce=-1))) == 6
    with SUThread(net.store, net.su_wallet, port=first.port):
        try:
            assert len(list(su.nodes(pid, after_nonce=-1))) == 6
        finally:
            su.close()
    dead = SUClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UpstreamError):
        list(dead.nodes(pid, after_nonce=-1))


def test_result_lookups_use_the_message_index(tmp_path):
    """/result and the duplicate check must not scan every row of the process (they did: 5 ms at 15k)."""
    st = CUStorage(tmp_path / "cu.sqlite")
    try:
        c = st._conn()
        for sql, args in ((RESULT_BY_MESSAGE, ("m", "p")), (EVALUATED_BEFORE, ("m", "p", 3))):
            plan = " ".join(row[-1] for row in c.execute("EXPLAIN QUERY PLAN " + sql, args))
            assert "results_by_message" in plan, plan
        st.put_results([ResultRow("p", "m", 1, 10, 1, "", 1, False, {"Output": 1}),
                        ResultRow("p", "m", 4, 11, 4, "", 1, False, {"Output": 2})])
        assert st.get_result("p", "m") == {"Output": 1}
        assert st.evaluated_before("p", "m", 4) and not st.evaluated_before("p", "m", 1)
    finally:
        st.close()


def test_result_lru_serves_repeats_and_stays_bounded(net):
    pid = spawn(net)
    ids = [send(net, pid, "Increment") for _ in range(3)]
    with cu_client(net, "cu-lru") as c:
        cu = c.app.state.cu
        cu.result_cache.max_entries = 2
        first = [result(c, m, pid) for m in ids]
        assert len(cu.result_cache) == 2
        hits = cu.result_cache.hits
        assert result(c, ids[-1], pid) == first[-1] and cu.result_cache.hits == hits + 1
        assert result(c, ids[0], pid) == first[0]          # evicted: read back from the database
        assert [r["Output"]["count"] for r in first] == [1, 2, 3]


def test_map_node_checks_what_the_su_sends():
    pid, aid = "A" * 43, "B" * 43

    def node(atags=None, mtags=None, message=True):
        atags = atags if atags is not None else [
            {"name": "Process", "value": pid}, {"name": "Nonce", "value": "0"},
            {"name": "Timestamp", "value": "5"}, {"name": "Block-Height", "value": "1"},
            {"name": "Hash-Chain", "value": first_hash_chain(pid)}]
        m = {"id": "M" * 43, "owner": {"address": "o"}, "data": None, "signature": "s", "anchor": None,
             "tags": mtags if mtags is not None else [{"name": "Action", "value": "X"}]}
        return {"message": m if message else None, "assignment": {"id": aid, "tags": atags}}

    s = map_node(node(mtags=[{"name": "Action", "value": "X", "extra": "dropped"},
                             {"name": "From-Process", "value": "P" * 43}, {"name": "Owner", "value": "evil"}]), pid)
    assert s.msg["Tags"] == [{"name": "Action", "value": "X"}, {"name": "From-Process", "value": "P" * 43}]
    assert s.msg["From"] == "P" * 43 and s.msg["Forwarded-By"] == "o" and s.pushed and s.msg["Data"] == ""
    for bad in (node(mtags=[{"name": "Action"}]), node(mtags="Action=X"), node(mtags=[{"name": 1, "value": "x"}]),
                node(atags=[{"name": "Process", "value": pid}, {"name": "Nonce", "value": "x"}]),
                node(atags=[{"name": "Process", "value": pid}, {"name": "Nonce", "value": "0"}], message=False),
                {"message": None}, {"assignment": {"tags": []}}, [1]):
        with pytest.raises(UpstreamError):
            map_node(bad, pid)
    with pytest.raises(ChainError):
        map_node(node(atags=[{"name": "Process", "value": "other"}]), pid)
    for prev_aid, prev_chain in (("not base64url!", first_hash_chain(pid)), (aid, "a+b/")):
        with pytest.raises(ChainError):             # ids and chains must be base64url
            ChainState(0, prev_aid, prev_chain).check(
                map_node(node(atags=[{"name": "Process", "value": pid}, {"name": "Nonce", "value": "1"},
                                     {"name": "Timestamp", "value": "5"}, {"name": "Block-Height", "value": "1"},
                                     {"name": "Hash-Chain", "value": "x"}]), pid), pid)
