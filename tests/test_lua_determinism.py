"""Determinism of Lua processes: the same messages on fresh instances give the same memory, results and gas."""
import hashlib

from aonet.vm.lua import LuaProcess, blueprint, lua_module
from aonet.vm.lua.harness import fake_id
from aonet.vm.wasm import WasmRuntime

ALICE = fake_id("alice")


def workload(runtime):
    """A token, transfers, random numbers, tables as keys (pairs order) and a suspended coroutine."""
    p = LuaProcess.spawn(runtime, tags={"On-Boot": "Data"}, data=blueprint("token"))
    results = [p.boot]
    results.append(p.eval("""
      t = {}
      for i = 1, 200 do t[{}] = math.random(1, 1e9); t['k' .. i] = tostring(i) end
      order = {}
      for k, v in pairs(t) do order[#order + 1] = tostring(v) end
      Handlers.add('Wait', 'Wait', function() local m = Receive({Action = 'Go'}); waited = m.Data end)
      return #order, os.time(), math.random()
    """))
    results.append(p.send({"Action": "Wait"}))
    for i in range(50):
        results.append(p.send({"Action": "Transfer", "Recipient": fake_id("r", i % 7), "Quantity": str(i + 1)}))
    results.append(p.send({"Action": "Go"}, "now"))
    results.append(p.eval("return table.concat(order, ','):sub(1, 200), waited, tostring(t)"))
    return p, results


def digest(results):
    return [(r.output, r.messages, r.spawns, r.assignments, r.error, r.gas_used) for r in results]


def test_two_fresh_instances_have_identical_memory():
    rt1, rt2 = WasmRuntime(), WasmRuntime()          # separate engines, separate instances
    p1, r1 = workload(rt1)
    p2, r2 = workload(rt2)
    assert all(r.error is None for r in r1), [r.error for r in r1 if r.error]
    assert digest(r1) == digest(r2)
    h1 = hashlib.sha256(p1.instance.snapshot()).hexdigest()
    h2 = hashlib.sha256(p2.instance.snapshot()).hexdigest()
    assert h1 == h2
    assert r1[-1].output["data"].split("\t")[1] == "now"


def test_snapshot_restored_into_fresh_instance_continues_identically():
    rt = WasmRuntime()
    p, _ = workload(rt)
    image = p.instance.snapshot()
    twin = LuaProcess(rt.instantiate(lua_module(), image=image), p.id, p.owner, p.module_id,
                      p.env["Process"]["Tags"], p.timestamp)
    twin.nonce = p.nonce
    for proc in (p, twin):
        proc.send({"Action": "Transfer", "Recipient": ALICE, "Quantity": "5"})
    a = p.send({"Action": "Balances"}, from_=ALICE)
    b = twin.send({"Action": "Balances"}, from_=ALICE)
    assert a.messages == b.messages and a.gas_used == b.gas_used
    assert p.instance.memory_hash() == twin.instance.memory_hash()


def test_failed_message_leaves_memory_unchanged():
    rt = WasmRuntime()
    p, _ = workload(rt)
    before = p.instance.memory_hash()
    r = p.eval("Balances = nil; error('undo me')")
    assert "undo me" in r.error
    assert p.instance.memory_hash() == before
