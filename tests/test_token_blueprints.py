"""The token blueprint, message by message, on both runtimes: Lua (blueprints/token.lua) and Python
(ao.blueprints.token). Every case of token_cases.py runs on each, then the two runtimes' results are
compared with each other step by step (same failures, same Targets, Anchors, Data and tags)."""
from __future__ import annotations

import pytest

import token_cases as tc
from aonet.vm.lua import blueprint, lua_module
from aonet.vm.python import PythonRuntime
from aonet.vm.wasm import WasmRuntime

RUNTIMES = ("lua", "python")


def _boot_message(data: str, tags: list[dict]) -> dict:
    """The Process message (Type=Process), as the CU hands it over: From = Owner = the owner."""
    return {"Id": tc.PROCESS_ID, "Signature": "", "From": tc.OWNER, "Owner": tc.OWNER, "Target": tc.PROCESS_ID,
            "Anchor": "", "Data": data, "Epoch": 0, "Nonce": 0, "Timestamp": 1_700_000_000_000,
            "Block-Height": 1000, "Hash-Chain": "", "Cron": False, "Read-Only": False,
            "Tags": [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                     {"name": "Type", "value": "Process"}, {"name": "Module", "value": "M" * 43}, *tags]}


class Booted:
    """A token process booted once on one runtime; every case starts from a copy of its memory."""

    def __init__(self, runtime: str):
        if runtime == "lua":
            wasm = WasmRuntime()
            module = lua_module()
            self.fresh = lambda image=None: wasm.instantiate(module, image=image)
            boot = _boot_message(blueprint("token"), [{"name": "On-Boot", "value": "Data"}])
        else:
            py = PythonRuntime()
            self.fresh = lambda image=None: py.instantiate(image=image)
            boot = _boot_message("from ao.blueprints import token\n", [])
        inst = self.fresh()
        r = inst.handle(boot, tc.env())
        assert r.error is None, r.error
        self.image = inst.snapshot()

    def run(self, case: tc.Case) -> list[dict]:
        return tc.run_case(case, lambda: self.fresh(self.image),
                           lambda inst, msg: inst.handle(msg, tc.env()).to_json())


@pytest.fixture(scope="module")
def booted() -> dict[str, Booted]:
    return {name: Booted(name) for name in RUNTIMES}


@pytest.mark.parametrize("case", tc.CASES, ids=[c.name for c in tc.CASES])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_token_case(booted, runtime, case):
    booted[runtime].run(case)


@pytest.mark.parametrize("case", tc.CASES, ids=[c.name for c in tc.CASES])
def test_lua_and_python_send_the_same_messages(booted, case):
    lua = [tc.outbox_view(r) for r in booted["lua"].run(case)]
    py = [tc.outbox_view(r) for r in booted["python"].run(case)]
    for i, (a, b) in enumerate(zip(lua, py)):
        assert a == b, f"{case.name} step {i}: Lua {a} != Python {b}"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_refused_steps_leave_memory_unchanged(booted, runtime):
    b = booted[runtime]
    inst = b.fresh(b.image)
    before = inst.snapshot()
    for m in (tc.msg(tc.PROCESS_ID, "Transfer", Recipient=tc.ALICE, Quantity="0"),
              tc.msg(tc.PROCESS_ID, "Burn", Quantity="99999999999999999"),
              tc.msg(tc.PROCESS_ID, "Total-Supply")):
        r = inst.handle(m, tc.env())
        assert r.error, r
        assert inst.snapshot() == before


def test_outbox_view_tells_runtimes_apart():
    """The comparison must see a difference in any of the fields it claims to compare."""
    base = {"Messages": [{"Target": tc.ALICE, "Anchor": "1", "Data": "x",
                          "Tags": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}
    same = {"Messages": [{"Target": tc.ALICE, "Anchor": "1", "Data": "x",
                          "Tags": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]}
    assert tc.outbox_view(base) == tc.outbox_view(same)
    for key, value in (("Target", tc.BOB), ("Anchor", "2"), ("Data", "y"), ("Tags", [{"name": "A", "value": "1"}])):
        other = {"Messages": [{**base["Messages"][0], key: value}]}
        assert tc.outbox_view(base) != tc.outbox_view(other), key
    assert tc.outbox_view(base) != tc.outbox_view({"Error": "boom"})


def test_checker_rejects_a_wrong_outbox():
    """The shared checker must fail on a mismatch, or the cases prove nothing."""
    good = {"Messages": [{"Target": tc.ALICE, "Data": "0", "Tags": [{"name": "Balance", "value": "0"}]}]}
    tc.check(good, tc.Expect([tc.Out(tc.ALICE, {"Balance": "0"}, data="0")]))
    for bad in (tc.Expect([tc.Out(tc.BOB, {"Balance": "0"})]), tc.Expect([tc.Out(tc.ALICE, {"Balance": "1"})]),
                tc.Expect([]), tc.Expect(error=True), tc.Expect([tc.Out(tc.ALICE, data="1")])):
        with pytest.raises(AssertionError):
            tc.check(good, bad)
