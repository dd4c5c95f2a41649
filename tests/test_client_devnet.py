"""The SDK end to end on a real devnet (gateway, SU, CU, MU on loopback) with the Lua module."""
from __future__ import annotations

import asyncio
import time

import pytest

from aonet.client import CascadeTimeout, UnitError, connect, connect_async

pytest.importorskip("aonet.cu.app", reason="the CU's HTTP app is not in this tree yet")

from fixtures_devnet import devnet_config, seed  # noqa: E402


@pytest.fixture(scope="module")
def devnet(tmp_path_factory, pingpong_wasm, unit_wallets):  # noqa: F811
    """The shared devnet recipe plus the Lua module (aos-style processes)."""
    from aonet.node import start_background
    data_dir = seed(tmp_path_factory.mktemp("devnet"), unit_wallets)
    net = start_background(devnet_config(data_dir, pingpong_wasm, modules=("lua",), monitor_interval=0.5))
    yield net
    net.stop()


@pytest.fixture(scope="module")
def ao(devnet):
    cfg = devnet.devnet_config()
    with connect(mu_url=cfg.mu_url, cu_url=cfg.cu_url, su_url=cfg.su_url, gateway_url=cfg.gateway_url,
                 wallet=cfg.wallet) as client:
        yield client


@pytest.fixture(scope="module")
def lua(devnet):
    return devnet.modules["lua"]


def spawn(ao, devnet, lua, **tags):
    return ao.spawn(lua, tags={"Authority": devnet.mu_address, **tags})


def eval_(ao, pid, code):
    mid = ao.message(pid, data=code, tags={"Action": "Eval"})
    return ao.result(mid, pid)


def test_spawn_eval_result(ao, devnet, lua):
    pid = spawn(ao, devnet, lua, Name="calc")
    res = eval_(ao, pid, "return 1 + 41")
    assert res.ok and res.text == "42" and res.prompt
    res = eval_(ao, pid, "error('nope')")
    assert not res.ok and "nope" in str(res.error)
    assert ao.process(pid).tag("Name") == "calc"


def test_cascade_is_awaited_and_traced(ao, devnet, lua):
    pid = spawn(ao, devnet, lua)
    eval_(ao, pid, "Handlers.add('ping', 'Ping', function(m) print('pong from ' .. m.From) end)")
    sent = ao.send(pid, "Send({Target = ao.id, Action = 'Ping'})", action="Eval", cascade=True, timeout=30)
    assert sent.result.ok and len(sent.result.messages) == 1
    trace = sent.trace
    assert trace.done and not trace.failed
    assert [t.kind for t in trace.tasks].count("message") == 1 and len(trace.pushed) == 1
    pushed = trace.pushed[0]
    node = ao.scheduled(pushed, pid)
    assert node.message.tag("Action") == "Ping" and node.message.tag("Pushed-For") == sent.id
    assert "pong from " + pid in ao.result(pushed, pid).text
    texts = [e.result.text for e in ao.results(pid, sort="DESC", limit=5)]
    assert any("pong from" in t for t in texts)
    assert ao.check_chain(pid).ok


def test_wait_for_cascade_times_out_on_an_endless_ping_pong(ao, devnet, lua):
    pid = spawn(ao, devnet, lua)
    eval_(ao, pid, "Handlers.add('loop', 'Loop', function(m) Send({Target = ao.id, Action = 'Loop'}) end)")
    mid = ao.message(pid, tags={"Action": "Loop"})
    with pytest.raises(CascadeTimeout) as info:
        ao.wait_for_cascade(mid, timeout=1.5)
    assert info.value.trace is not None and len(info.value.trace.tasks) >= 2
    eval_(ao, pid, "Handlers.remove('loop')")       # stop it


def test_dryrun_does_not_persist(ao, devnet, lua):
    pid = spawn(ao, devnet, lua)
    eval_(ao, pid, "x = 1")
    me = ao.wallet.address
    res = ao.dryrun(pid, "x = 5; return x", tags={"Action": "Eval"}, owner=me)
    assert res.ok and res.text == "5"
    assert eval_(ao, pid, "return x").text == "1"
    eval_(ao, pid, "Handlers.add('info', 'Info', function(m) m.reply({Data = 'hello'}) end)")
    res = ao.dryrun(pid, tags={"Action": "Info"}, owner=me)
    assert res.messages and res.messages[0].data == "hello" and res.messages[0].target == me


def test_assign_delivers_an_existing_message(ao, devnet, lua):
    a, b = spawn(ao, devnet, lua), spawn(ao, devnet, lua)
    eval_(ao, b, "ao.addAssignable('all', function(m) return true end)\n"
                 "Handlers.add('note', 'Note', function(m) print('assigned: ' .. m.Data) end)")
    mid = ao.message(a, data="shared", tags={"Action": "Note"})
    aid = ao.assign(b, mid)
    assert aid and aid != mid
    ao.wait_for_cascade(aid, timeout=30)
    assert ao.result(mid, b).text == "assigned: shared"
    assert ao.scheduled(mid, b).assignment.tag("Message") == mid


def test_monitor_runs_crons(ao, devnet, lua):
    pid = ao.spawn(lua, tags={"Authority": devnet.mu_address, "Cron-Interval": "1-second",
                              "Cron-Tag-Action": "Tick"})
    eval_(ao, pid, "Ticks = 0\nHandlers.add('tick', 'Tick', function(m) Ticks = Ticks + 1 end)")
    assert ao.monitor(pid)
    deadline = time.monotonic() + 20
    ticks = 0
    while time.monotonic() < deadline and ticks < 2:
        time.sleep(0.5)
        ticks = int(ao.dryrun(pid, "return Ticks", tags={"Action": "Eval"}, owner=ao.wallet.address).text or 0)
    assert ticks >= 2
    assert ao.unmonitor(pid)


def test_unit_errors_from_the_cu_and_mu(ao):
    with pytest.raises(UnitError) as info:
        ao.result("A" * 43, "B" * 43)
    assert info.value.unit == "cu" and info.value.status >= 400 and info.value.error
    with pytest.raises(UnitError) as info:
        ao.assign("C" * 43, "D" * 43)
    assert info.value.unit == "mu" and info.value.status == 400 and "C" * 43 in info.value.error


def test_async_client_end_to_end(devnet, lua):
    cfg = devnet.devnet_config()

    async def main():
        async with connect_async(mu_url=cfg.mu_url, cu_url=cfg.cu_url, su_url=cfg.su_url,
                                 wallet=cfg.wallet) as ao:
            pid = await ao.spawn(lua, tags={"Authority": devnet.mu_address})
            mids = [await ao.message(pid, data=f"n = (n or 0) + {i}", tags={"Action": "Eval"}) for i in range(1, 4)]
            results = await asyncio.gather(*(ao.result(m, pid) for m in mids))
            assert all(r.ok for r in results)
            mid = await ao.message(pid, data="return n", tags={"Action": "Eval"})
            return (await ao.result(mid, pid)).text
    assert asyncio.run(main()) == "6"
