"""Message-level conformance cases for AO's token blueprint, usable by any runtime (Python, Lua, ...).

Each case starts from a freshly booted token process (id PROCESS_ID, owner OWNER, default state:
Balances = {PROCESS_ID: 10^16}, Name "Points Coin", Ticker "PNTS", Denomination 12) and feeds its
steps in order. A step is (message, expectation):
  - `Expect(messages=[Out(...), ...])`: the outbox holds exactly these messages, in this order; each
    `Out` lists the Target, the tags that must be present with these values (others may be present)
    and optionally the exact Data (or `data_json`, compared after json.loads).
  - `Expect(error=True)`: the message fails (the result has Error) and the state is unchanged.
A runtime's test calls `run_case(case, boot, handle)` with its own `boot()` (a new token process)
and `handle(process, msg) -> result dict` (AO's result shape: Messages, Error, ...); it returns the
results, so that two runtimes can also be compared with each other (`outbox_view`).
Colors in notice texts are aos's (`Colors.gray` etc.). tests/test_token_blueprints.py runs every case
against the Lua and the Python blueprint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

PROCESS_ID = "TokenProcess00000000000000000000000000000000"[:43]
OWNER = "Owner0000000000000000000000000000000000000000"[:43]
ALICE = "Alice0000000000000000000000000000000000000000"[:43]
BOB = "Bob000000000000000000000000000000000000000000"[:43]
SUPPLY = "10000000000000000"
LOGO = "SBCCXwwecBlDqRLUjb8dYABExTJXLieawf7m2aBJ-KY"
GRAY, BLUE, GREEN, RESET = "\x1b[90m", "\x1b[34m", "\x1b[32m", "\x1b[0m"


def env() -> dict:
    """AO's env for the token process (PROTOCOL.md §5.1 step 5)."""
    tags = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
            {"name": "Type", "value": "Process"}, {"name": "Module", "value": "M" * 43},
            {"name": "Scheduler", "value": "S" * 43}]
    return {"Process": {"Id": PROCESS_ID, "Owner": OWNER, "Tags": tags},
            "Module": {"Id": "M" * 43, "Owner": OWNER, "Tags": []}}


_counter = [0]


def msg(sender: str, action: str | None, data: str = "", **tags: str) -> dict:
    """A scheduled message in the shape the CU hands to `handle` (PROTOCOL.md §5.1 step 4)."""
    _counter[0] += 1
    n = _counter[0]
    tag_list = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                {"name": "Type", "value": "Message"}]
    if action is not None:
        tag_list.append({"name": "Action", "value": action})
    tag_list += [{"name": k.replace("_", "-"), "value": v} for k, v in tags.items()]
    return {"Id": f"msg-{n:039d}", "Signature": "", "Data": data, "Owner": sender, "From": sender,
            "Target": PROCESS_ID, "Anchor": "", "Tags": tag_list, "Epoch": 0, "Nonce": n,
            "Timestamp": 1_700_000_000_000 + n, "Block-Height": 1000, "Hash-Chain": "", "Cron": False,
            "Read-Only": False}


@dataclass
class Out:
    target: str
    tags: dict[str, str] = field(default_factory=dict)
    data: str | None = None
    data_json: Any = None


@dataclass
class Expect:
    messages: list[Out] = field(default_factory=list)
    error: bool = False


@dataclass
class Case:
    name: str
    steps: list[tuple[dict, Expect]]


def _tags_of(m: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in m.get("Tags") or []:
        out.setdefault(t["name"], t["value"])
    return out


def check(result: dict, expect: Expect, where: str = "") -> None:
    """Assert that one result matches its expectation (raises AssertionError with the details)."""
    if expect.error:
        assert result.get("Error"), f"{where}: expected an Error, got {result}"
        return
    assert not result.get("Error"), f"{where}: unexpected Error: {result.get('Error')}"
    got = result.get("Messages") or []
    assert len(got) == len(expect.messages), \
        f"{where}: expected {len(expect.messages)} messages, got {len(got)}: {json.dumps(got, indent=1)}"
    for i, (m, e) in enumerate(zip(got, expect.messages)):
        w = f"{where} message {i}"
        assert m.get("Target") == e.target, f"{w}: Target {m.get('Target')!r} != {e.target!r}"
        tags = _tags_of(m)
        for k, v in e.tags.items():
            assert tags.get(k) == v, f"{w}: tag {k}={tags.get(k)!r}, expected {v!r} (tags: {tags})"
        for t in m.get("Tags") or []:
            assert isinstance(t.get("value"), str), f"{w}: tag value {t!r} is not a string"
        if e.data is not None:
            assert m.get("Data") == e.data, f"{w}: Data {m.get('Data')!r} != {e.data!r}"
        if e.data_json is not None:
            assert json.loads(m.get("Data")) == e.data_json, f"{w}: Data {m.get('Data')!r} != {e.data_json!r}"


def run_case(case: Case, boot: Callable[[], Any], handle: Callable[[Any, dict], dict]) -> list[dict]:
    process = boot()
    results = []
    for i, (m, e) in enumerate(case.steps):
        results.append(handle(process, m))
        check(results[-1], e, f"{case.name} step {i} ({_tags_of(m).get('Action')})")
    return results


def outbox_view(result: dict) -> dict:
    """What a result says at message level, for comparing two runtimes: failed or not, and every
    outgoing message (Target, Anchor, Data, tags as a sorted list: each runtime orders tags its own way)."""
    return {"error": bool(result.get("Error")),
            "messages": [{"Target": m.get("Target"), "Anchor": m.get("Anchor"), "Data": m.get("Data"),
                          "Tags": sorted((t["name"], t["value"]) for t in m.get("Tags") or [])}
                         for m in result.get("Messages") or []],
            "spawns": result.get("Spawns") or [], "assignments": result.get("Assignments") or []}


def _balances(sender: str, expected: dict[str, str]) -> tuple[dict, Expect]:
    return msg(sender, "Balances"), Expect([Out(sender, data_json=expected)])


def _transfer(sender: str, recipient: str, quantity: str, **extra: str) -> dict:
    return msg(sender, "Transfer", Recipient=recipient, Quantity=quantity, **extra)


def _notices(sender: str, recipient: str, quantity: str, **x: str) -> Expect:
    return Expect([
        Out(sender, {"Action": "Debit-Notice", "Recipient": recipient, "Quantity": quantity, **x},
            data=f"{GRAY}You transferred {BLUE}{quantity}{GRAY} to {GREEN}{recipient}{RESET}"),
        Out(recipient, {"Action": "Credit-Notice", "Sender": sender, "Quantity": quantity, **x},
            data=f"{GRAY}You received {BLUE}{quantity}{GRAY} from {GREEN}{sender}{RESET}"),
    ])


def _supply(sender: str, value: str) -> tuple[dict, Expect]:
    return msg(sender, "Total-Supply"), Expect([Out(sender, {"Action": "Total-Supply", "Ticker": "PNTS"}, data=value)])


CASES: list[Case] = [
    Case("info", [
        (msg(ALICE, "Info"), Expect([Out(ALICE, {"Name": "Points Coin", "Ticker": "PNTS", "Logo": LOGO,
                                                  "Denomination": "12"},
                                         data_json={"name": "Points Coin", "ticker": "PNTS", "logo": LOGO,
                                                    "denomination": "12", "supply": SUPPLY})])),
    ]),
    Case("balance", [
        (msg(ALICE, "Balance"), Expect([Out(ALICE, {"Balance": "0", "Ticker": "PNTS", "Account": ALICE}, data="0")])),
        (msg(ALICE, "Balance", Recipient=PROCESS_ID),
         Expect([Out(ALICE, {"Balance": SUPPLY, "Ticker": "PNTS", "Account": PROCESS_ID}, data=SUPPLY)])),
        (msg(BOB, "Balance", Target=PROCESS_ID),
         Expect([Out(BOB, {"Balance": SUPPLY, "Account": BOB}, data=SUPPLY)])),
        (msg(PROCESS_ID, "Balance"), Expect([Out(PROCESS_ID, {"Balance": SUPPLY, "Account": PROCESS_ID}, data=SUPPLY)])),
        (msg(ALICE, "Balance", Recipient=BOB), Expect([Out(ALICE, {"Balance": "0", "Account": BOB}, data="0")])),
        # a Target tag without a balance falls back to the sender (AO's rule)
        (msg(PROCESS_ID, "Balance", Target=BOB),
         Expect([Out(PROCESS_ID, {"Balance": SUPPLY, "Account": PROCESS_ID}, data=SUPPLY)])),
    ]),
    Case("balances", [_balances(ALICE, {PROCESS_ID: SUPPLY})]),
    Case("transfer with notices and X- tags", [
        (_transfer(PROCESS_ID, ALICE, "1000", X_Note="hello", X_Order_Id="42"),
         _notices(PROCESS_ID, ALICE, "1000", **{"X-Note": "hello", "X-Order-Id": "42"})),
        _balances(BOB, {PROCESS_ID: "9999999999999000", ALICE: "1000"}),
        (_transfer(ALICE, BOB, "400"), _notices(ALICE, BOB, "400")),
        _balances(BOB, {PROCESS_ID: "9999999999999000", ALICE: "600", BOB: "400"}),
        (msg(BOB, "Balance"), Expect([Out(BOB, {"Balance": "400"}, data="400")])),
    ]),
    Case("transfer of everything and of big numbers", [
        (_transfer(PROCESS_ID, ALICE, SUPPLY), _notices(PROCESS_ID, ALICE, SUPPLY)),
        _balances(ALICE, {PROCESS_ID: "0", ALICE: SUPPLY}),
        (_transfer(PROCESS_ID, ALICE, "1"), Expect([Out(PROCESS_ID, {"Action": "Transfer-Error",
                                                                     "Error": "Insufficient Balance!"})])),
    ]),
    Case("reply carries X-Reference", [
        (_transfer(PROCESS_ID, ALICE, "5", Reference="77"),
         Expect([Out(PROCESS_ID, {"Action": "Debit-Notice", "X-Reference": "77"}),
                 Out(ALICE, {"Action": "Credit-Notice"})])),
        # an X-Reference / X-Origin the request carries goes on both notices
        (_transfer(PROCESS_ID, ALICE, "5", Reference="78", X_Reference="9", X_Origin="origin"),
         Expect([Out(PROCESS_ID, {"Action": "Debit-Notice", "X-Reference": "9", "X-Origin": "origin"}),
                 Out(ALICE, {"Action": "Credit-Notice", "X-Reference": "9", "X-Origin": "origin"})])),
    ]),
    Case("insufficient balance", [
        (m1 := _transfer(ALICE, BOB, "5"),
         Expect([Out(ALICE, {"Action": "Transfer-Error", "Message-Id": m1["Id"], "Error": "Insufficient Balance!"})])),
        _balances(ALICE, {PROCESS_ID: SUPPLY, ALICE: "0", BOB: "0"}),
    ]),
    Case("cast transfer sends nothing", [
        (_transfer(PROCESS_ID, BOB, "7", Cast="true"), Expect([])),
        _balances(ALICE, {PROCESS_ID: "9999999999999993", BOB: "7"}),
    ]),
    Case("bad transfers fail", [
        (_transfer(PROCESS_ID, ALICE, "0"), Expect(error=True)),
        (_transfer(PROCESS_ID, ALICE, "-5"), Expect(error=True)),
        (_transfer(PROCESS_ID, ALICE, "01"), Expect(error=True)),
        (_transfer(PROCESS_ID, ALICE, "1.5"), Expect(error=True)),
        (_transfer(PROCESS_ID, ALICE, "abc"), Expect(error=True)),
        (_transfer(PROCESS_ID, ALICE, " 5"), Expect(error=True)),
        (_transfer(PROCESS_ID, "", "5"), Expect(error=True)),
        (msg(PROCESS_ID, "Transfer", Quantity="5"), Expect(error=True)),
        (msg(PROCESS_ID, "Transfer", Recipient=ALICE), Expect(error=True)),
        _balances(ALICE, {PROCESS_ID: SUPPLY}),
    ]),
    Case("transfer to oneself", [
        (_transfer(PROCESS_ID, PROCESS_ID, "10"), _notices(PROCESS_ID, PROCESS_ID, "10")),
        _balances(ALICE, {PROCESS_ID: SUPPLY}),
    ]),
    Case("mint", [
        (m2 := msg(ALICE, "Mint", Quantity="100"),
         Expect([Out(ALICE, {"Action": "Mint-Error", "Message-Id": m2["Id"],
                             "Error": "Only the process or its owner can mint new PNTS tokens!"})])),
        (msg(PROCESS_ID, "Mint", Quantity="500"),
         Expect([Out(PROCESS_ID, data=f"{GRAY}Successfully minted {BLUE}500{RESET}")])),
        _supply(ALICE, "10000000000000500"),
        _balances(ALICE, {PROCESS_ID: "10000000000000500"}),
        # the owner may mint too (the "Mint (owner only)"; aos: the process only): to itself
        (msg(OWNER, "Mint", Quantity="25"), Expect([Out(OWNER, data=f"{GRAY}Successfully minted {BLUE}25{RESET}")])),
        _supply(ALICE, "10000000000000525"),
        _balances(ALICE, {PROCESS_ID: "10000000000000500", OWNER: "25"}),
        (msg(PROCESS_ID, "Mint", Quantity="0"), Expect(error=True)),
        (msg(PROCESS_ID, "Mint", Quantity="-3"), Expect(error=True)),
        (msg(PROCESS_ID, "Mint"), Expect(error=True)),
        (msg(ALICE, "Mint", Quantity="x"), Expect(error=True)),     # quantity checked first, as in aos
        _supply(BOB, "10000000000000525"),
    ]),
    Case("total supply", [
        _supply(ALICE, SUPPLY),
        (msg(PROCESS_ID, "Total-Supply"), Expect(error=True)),
    ]),
    Case("burn", [
        (msg(PROCESS_ID, "Burn", Quantity="100"),
         Expect([Out(PROCESS_ID, data=f"{GRAY}Successfully burned {BLUE}100{RESET}")])),
        _supply(ALICE, "9999999999999900"),
        _balances(ALICE, {PROCESS_ID: "9999999999999900"}),
        (msg(PROCESS_ID, "Burn", Quantity="99999999999999999"), Expect(error=True)),
        (msg(ALICE, "Burn", Quantity="1"), Expect(error=True)),
        (msg(PROCESS_ID, "Burn"), Expect(error=True)),
        (msg(PROCESS_ID, "Burn", Quantity="0"), Expect(error=True)),
        (msg(PROCESS_ID, "Burn", Quantity="-1"), Expect(error=True)),
        _supply(BOB, "9999999999999900"),
        _balances(BOB, {PROCESS_ID: "9999999999999900"}),
        (msg(PROCESS_ID, "Burn", Quantity="9999999999999900"),
         Expect([Out(PROCESS_ID, data=f"{GRAY}Successfully burned {BLUE}9999999999999900{RESET}")])),
        _supply(BOB, "0"),
    ]),
]
