"""The Python SDK against real units on loopback (an SU, a gateway), plus its pure parts.

The SU speaks the same `POST /` wire shape as the MU for signed items, so until a full devnet is up
these tests point mu_url at the SU: spawn and message go through the very code path they use with an
MU, and the SU's answers are read back with the SDK's own typed views.
"""
from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
import uvicorn

from aonet.client import (AoError, ConfigError, ProcessInfo, ProtocolError, Result, ResultsPage, Trace, UnitError,
                          UnitUnreachable, connect, connect_async)
from aonet.client import core
from aonet.client.verify import check_schedule
from aonet.wallet import Wallet
from fixtures_su import free_port

MODULE = "M" * 43


@pytest.fixture(scope="module")
def user() -> Wallet:
    return Wallet.generate("ed25519")


@pytest.fixture
def ao(su_thread, user):
    with connect(mu_url=su_thread.url, su_url=su_thread.url, wallet=user) as client:
        yield client


def test_spawn_and_message_land_in_the_schedule(ao, su_thread, su_wallet, user):
    assert ao.scheduler_address() == su_wallet.address
    pid = ao.spawn(MODULE, tags={"Name": "counter"}, data="boot")
    info = ao.process(pid)
    assert isinstance(info, ProcessInfo) and info.process_id == pid
    assert info.module == MODULE and info.scheduler == su_wallet.address
    assert info.owner.address == user.address and info.tag("Name") == "counter"
    assert info.tag("Type") == "Process" and info.data == "boot"

    mid = ao.message(pid, data="hello", tags=[("Action", "Ping"), {"name": "X", "value": "1"}])
    node = ao.scheduled(mid, pid)
    assert node.message_id == mid and node.nonce == 1
    assert node.message.tag("Action") == "Ping" and node.message.tag("X") == "1"
    assert node.message.tag("Type") == "Message" and node.message.data == "hello"
    assert node.assignment.tag("Process") == pid
    assert ao.latest(pid).message_id == mid

    page = ao.schedule(pid)
    assert [n.nonce for n in page] == [0, 1] and not page.has_next_page
    assert [n.message_id for n in page] == [pid, mid]


def test_check_chain_passes_then_catches_tampering(ao, su_thread, su_wallet):
    pid = ao.spawn(MODULE)
    for i in range(3):
        ao.message(pid, data=f"m{i}", tags={"Action": "Step"})
    report = ao.check_chain(pid)
    assert report.ok, report.errors
    assert report.count == 4 and report.last_nonce == 3 and report.messages_checked == 4

    page = ao.schedule(pid, from_nonce=-1, show_anchor=True)
    nodes = list(page)
    raw = json.loads(json.dumps(page.raw))
    raw["edges"][2]["node"]["assignment"]["tags"][3]["value"] = nodes[1].assignment.tag("Hash-Chain")  # Hash-Chain
    raw["edges"][3]["node"]["message"]["data"] = "forged"
    from aonet.client import SchedulePage
    bad = check_schedule(pid, su_wallet.address, SchedulePage.from_json(raw))
    assert not bad.ok
    text = "\n".join(bad.errors)
    assert "nonce 2: Hash-Chain" in text and "signature does not verify" in text
    assert "nonce 3: message" in text
    # a schedule signed by someone else is not this scheduler's
    other = check_schedule(pid, "x" * 43, nodes)
    assert any("not the scheduler" in e for e in other.errors)


def test_unit_errors_carry_the_units_json(ao):
    with pytest.raises(UnitError) as info:
        ao.process("A" * 43)
    err = info.value
    assert err.unit == "su" and err.status == 404 and "A" * 43 in err.error
    assert err.body == {"error": err.error}
    with pytest.raises(UnitError) as info:   # a message to a process the SU does not know
        ao.message("B" * 43, data="x")
    assert info.value.status in (400, 404) and info.value.error


def test_configuration_mistakes_are_typed(su_thread, user):
    port = free_port()
    with connect(mu_url=f"http://127.0.0.1:{port}", su_url=f"http://127.0.0.1:{port}", wallet=user) as dead:
        with pytest.raises(UnitUnreachable) as info:
            dead.spawn(MODULE)
        assert info.value.unit == "su" and str(port) in str(info.value)
    with connect(su_url=su_thread.url) as ro:
        with pytest.raises(ConfigError, match="wallet"):
            ro.message("P" * 43, data="x")
        with pytest.raises(ConfigError, match="CU URL"):
            ro.result("m" * 43, "P" * 43)
    with pytest.raises(ConfigError, match="http"):
        connect(mu_url="localhost:4000")
    with pytest.raises(ConfigError, match="not found"):
        connect(wallet="/nonexistent/wallet.json")
    with connect(mu_url=su_thread.url, wallet=user) as ao:
        with pytest.raises(ConfigError, match="scheduler"):
            ao.spawn(MODULE)                    # no su_url to ask, no scheduler given
        with pytest.raises(AoError, match="tag"):
            ao.message("P" * 43, tags=[("Action", 3)])
        with pytest.raises(AoError):
            ao.message("not-an-id", data="x")


def test_wallet_forms_accepted(tmp_path, su_thread, user):
    path = user.save(tmp_path / "w.json")
    for w in (user, str(path), path, user.to_json()):
        with connect(mu_url=su_thread.url, su_url=su_thread.url, wallet=w) as ao:
            assert ao.wallet.address == user.address
    eth = Wallet.generate("ethereum")
    with connect(mu_url=su_thread.url, su_url=su_thread.url, wallet=eth) as ao:
        pid = ao.spawn(MODULE)
        assert ao.process(pid).owner.address == eth.address


def test_async_client_shares_the_flows(su_thread, user):
    async def main():
        async with connect_async(mu_url=su_thread.url, su_url=su_thread.url, wallet=user) as ao:
            pid = await ao.spawn(MODULE)
            mids = await asyncio.gather(*(ao.message(pid, data=str(i)) for i in range(5)))
            page = await ao.schedule(pid)
            assert sorted(n.message_id for n in page)[:0] == []
            assert {n.message_id for n in page} == {pid, *mids}
            assert (await ao.check_chain(pid)).ok
            with pytest.raises(UnitError):
                await ao.process("C" * 43)
            return pid
    assert len(asyncio.run(main())) == 43


def test_env_urls_like_aoconnect(monkeypatch, su_thread):
    monkeypatch.setenv("SU_URL", su_thread.url)
    monkeypatch.setenv("MU_URL", su_thread.url)
    with connect() as ao:
        assert ao.endpoints.su_url == su_thread.url and ao.endpoints.mu_url == su_thread.url
        assert ao.scheduler_address()


# ---- spawn's module check against a real gateway ---------------------------------------------------
@pytest.fixture
def gateway(tmp_path):
    from aonet.gateway import create_gateway_app
    from aonet.store import SQLiteStore
    store = SQLiteStore(tmp_path / "gw.sqlite")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_gateway_app(store), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/info", timeout=1)
            break
        except httpx.HTTPError:
            threading.Event().wait(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


def test_spawn_checks_the_module_on_the_gateway(gateway, su_thread, user):
    from aonet.protocol import build_module, build_message
    module = build_module(user, b"\0asm\1\0\0\0")
    not_module = build_message(user, "P" * 43, data="x")
    for item in (module, not_module):
        r = httpx.post(gateway + "/tx/arweave", content=item.raw,
                       headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
    with connect(mu_url=su_thread.url, su_url=su_thread.url, gateway_url=gateway, wallet=user) as ao:
        pid = ao.spawn(module.id)
        assert ao.process(pid).module == module.id
        with pytest.raises(AoError, match="not an AO module"):
            ao.spawn(not_module.id)
        with pytest.raises(AoError, match="not found"):
            ao.spawn("Z" * 43)
        assert ao.spawn("Z" * 43, check_module=False)


# ---- pure parts -------------------------------------------------------------------------------------
def test_dryrun_body_is_aoconnects():
    body = core.dryrun_body("P" * 43, None, {"Action": "Balance"}, None, None, {"From": "me"})
    assert body == {"Id": "1234", "Owner": "1234", "From": "me", "Target": "P" * 43, "Data": "1234",
                    "Tags": [{"name": "Action", "value": "Balance"}, {"name": "Data-Protocol", "value": "ao"},
                             {"name": "Type", "value": "Message"}, {"name": "Variant", "value": "ao.TN.1"}],
                    "Anchor": "0"}
    assert core.dryrun_body("P", "x", None, "a", "OWN", {})["Owner"] == "OWN"


def test_result_parsing():
    raw = {"Output": {"data": "2", "prompt": "aos> ", "print": True},
           "Messages": [{"Target": "T" * 43, "Data": "hi", "Anchor": "0" * 32,
                         "Tags": [{"name": "Action", "value": "Pong"}]}],
           "Spawns": [{"Data": "d", "Tags": [{"name": "Module", "value": "M"}]}],
           "Assignments": [{"Processes": ["A", "B"], "Message": "X"}], "GasUsed": 7}
    res = Result.from_json(raw)
    assert res.ok and res.text == "2" and res.prompt == "aos> " and res.gas_used == 7
    assert res.messages[0].tag("Action") == "Pong" and res.messages[0].target == "T" * 43
    assert res.spawns[0].tag("Module") == "M" and res.assignments[0].processes == ("A", "B")
    assert res.raw is raw
    err = Result.from_json({"Error": "boom"})
    assert not err.ok and err.text == "" and err.messages == ()
    assert Result.from_json({"Output": 3}).text == "3"
    for bad in ([], {"Messages": {}}, {"Messages": [{"Tags": "x"}]}, {"Messages": [{"Tags": [{"name": 1}]}]}):
        with pytest.raises(ProtocolError):
            Result.from_json(bad)
    page = ResultsPage.from_json({"pageInfo": {"hasNextPage": True},
                                  "edges": [{"cursor": "c1", "node": raw}, {"cursor": "c2", "node": {}}]})
    assert page.has_next_page and page.last_cursor == "c2" and len(page) == 2
    with pytest.raises(ProtocolError):
        ResultsPage.from_json({"pageInfo": {}})


def test_trace_reads_the_mus_own_queue(tmp_path, user):
    """Trace parses what the real MU serves: its queue rows, done once nothing is pending."""
    from aonet.mu.app import MessengerUnit
    from aonet.mu.queue import NewTask
    mu = MessengerUnit(user, data_dir=tmp_path, cu_url="http://127.0.0.1:1", gateway_url="http://127.0.0.1:1")
    root = "R" * 43
    assert not Trace.from_json(root, mu.trace(root)).done           # nothing recorded yet
    mu.queue.add([NewTask(f"result:{root}", "result", {"message": root}, target="P" * 43, root=root,
                          item_id=root)])
    t = Trace.from_json(root, mu.trace(root))
    assert len(t.tasks) == 1 and not t.done and t.pending[0].kind == "result"
    mu.queue.complete(f"result:{root}", [NewTask("src:m0", "message", {}, target="Q" * 43, root=root)])
    t = Trace.from_json(root, mu.trace(root))
    assert [x.kind for x in t.tasks] == ["result", "message"] and not t.done
    mu.queue.fail("src:m0", "SU down", permanent=True)
    t = Trace.from_json(root, mu.trace(root))
    assert t.done and t.failed and "SU down" in t.failure
    mu.queue.close()
    with pytest.raises(ProtocolError):
        Trace.from_json(root, {"nope": 1})


def test_wait_for_cascade_times_out_with_the_last_trace(tmp_path):
    """The flow itself, driven by hand with a fake clock: no unit is needed to check the timing rule."""
    now = [0.0]
    flow = core.wait_for_cascade(core.Endpoints(mu_url="http://mu"), "R" * 43, timeout=2.0,
                                 clock=lambda: now[0])
    effect = next(flow)
    sleeps = 0
    pending = {"edges": [{"cursor": "1", "node": {"kind": "result", "state": "pending", "id": "R" * 43}}]}
    with pytest.raises(core.CascadeTimeout) as info:
        while True:
            if isinstance(effect, core.Request):
                assert effect.params == {"debug": "true", "message": "R" * 43}
                effect = flow.send(core.Response(200, {}, json.dumps(pending).encode(), effect.url))
            else:
                sleeps += 1
                now[0] += effect.seconds
                effect = flow.send(None)
    assert sleeps >= 5 and info.value.trace.pending
