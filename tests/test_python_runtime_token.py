"""AO's token blueprint in Python (ao.blueprints.token), run against the shared cases in token_cases.py."""
from __future__ import annotations

import pytest

import token_cases as tc
from aonet.vm.python import PythonRuntime


@pytest.fixture(scope="module")
def booted():
    """A token process booted once; every case starts from a copy of its memory."""
    rt = PythonRuntime()
    inst = rt.instantiate()
    boot = {"Id": tc.PROCESS_ID, "From": tc.OWNER, "Owner": tc.OWNER, "Target": tc.PROCESS_ID,
            "Data": "from ao.blueprints import token\n", "Timestamp": 1_700_000_000_000, "Block-Height": 1000,
            "Tags": [{"name": "Type", "value": "Process"}, {"name": "Module", "value": "M" * 43}]}
    r = inst.handle(boot, tc.env())
    assert r.error is None, r.error
    return rt, inst.snapshot()


@pytest.mark.parametrize("case", tc.CASES, ids=[c.name for c in tc.CASES])
def test_token_case(booted, case):
    rt, image = booted
    tc.run_case(case, lambda: rt.instantiate(image=image),
                lambda inst, msg: inst.handle(msg, tc.env()).to_json())


def test_failed_steps_leave_state_unchanged(booted):
    rt, image = booted
    inst = rt.instantiate(image=image)
    before = inst.snapshot()
    r = inst.handle(tc.msg(tc.PROCESS_ID, "Transfer", Recipient=tc.ALICE, Quantity="0"), tc.env())
    assert "Quantity must be greater than 0" in r.error
    assert inst.snapshot() == before


def test_checker_rejects_a_wrong_outbox():
    """The shared checker must fail on a mismatch, or the cases prove nothing."""
    good = {"Messages": [{"Target": tc.ALICE, "Data": "0", "Tags": [{"name": "Balance", "value": "0"}]}]}
    tc.check(good, tc.Expect([tc.Out(tc.ALICE, {"Balance": "0"}, data="0")]))
    for bad in (tc.Expect([tc.Out(tc.BOB, {"Balance": "0"})]), tc.Expect([tc.Out(tc.ALICE, {"Balance": "1"})]),
                tc.Expect([]), tc.Expect(error=True), tc.Expect([tc.Out(tc.ALICE, data="1")])):
        with pytest.raises(AssertionError):
            tc.check(good, bad)
