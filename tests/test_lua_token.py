"""The token blueprint (PROTOCOL.md §8), message by message on the Lua module through aonet.vm.wasm."""
import json

import pytest

from aonet.vm.lua import LuaProcess, blueprint, lua_module
from aonet.vm.lua.harness import fake_id
from aonet.vm.wasm import WasmRuntime

ALICE = fake_id("alice")
BOB = fake_id("bob")


@pytest.fixture(scope="module")
def runtime():
    rt = WasmRuntime()
    rt.compile(lua_module())
    return rt


@pytest.fixture
def token(runtime):
    """A token spawned with the blueprint as On-Boot data; the owner mints 1000 to itself."""
    p = LuaProcess.spawn(runtime, tags={"On-Boot": "Data"}, data=blueprint("token"))
    assert p.boot.error is None, p.boot.error
    r = p.send({"Action": "Mint", "Quantity": "1000"})
    assert r.error is None, r.error
    return p


def tags_of(m):
    return {t["name"]: t["value"] for t in m["Tags"]}


def balances(p):
    (m,) = p.send({"Action": "Balances"}, from_=ALICE).messages
    return json.loads(m["Data"])


def test_info(token):
    (m,) = token.send({"Action": "Info"}, from_=ALICE).messages
    t = tags_of(m)
    assert m["Target"] == ALICE
    assert (t["Name"], t["Ticker"], t["Denomination"]) == ("Points Coin", "PNTS", "12")
    assert json.loads(m["Data"])["ticker"] == "PNTS"


def test_mint_owner_only(token):
    assert balances(token)[token.owner] == "1000"
    (m,) = token.send({"Action": "Mint", "Quantity": "5"}, from_=ALICE).messages
    assert tags_of(m)["Action"] == "Mint-Error"
    assert token.owner in balances(token) and ALICE not in balances(token)


def test_transfer_notices_and_x_tags(token):
    r = token.send({"Action": "Transfer", "Recipient": ALICE, "Quantity": "400", "X-Order": "17", "Y": "no"})
    debit, credit = r.messages
    assert debit["Target"] == token.owner and credit["Target"] == ALICE
    td, tc = tags_of(debit), tags_of(credit)
    assert td["Action"] == "Debit-Notice" and td["Recipient"] == ALICE and td["Quantity"] == "400"
    assert tc["Action"] == "Credit-Notice" and tc["Sender"] == token.owner and tc["Quantity"] == "400"
    assert td["X-Order"] == tc["X-Order"] == "17" and "Y" not in tc
    b = balances(token)
    assert b[token.owner] == "600" and b[ALICE] == "400"


def test_transfer_insufficient_balance(token):
    token.send({"Action": "Transfer", "Recipient": ALICE, "Quantity": "10"})
    msg = token.message({"Action": "Transfer", "Recipient": BOB, "Quantity": "11"}, from_=ALICE)
    (m,) = token.instance.handle(msg, token.env).messages
    t = tags_of(m)
    assert m["Target"] == ALICE and t["Action"] == "Transfer-Error" and t["Error"] == "Insufficient Balance!"
    assert t["Message-Id"] == msg["Id"]
    assert balances(token)[ALICE] == "10" and balances(token)[BOB] == "0"     # aos opens both accounts


def test_transfer_cast_sends_nothing(token):
    r = token.send({"Action": "Transfer", "Recipient": BOB, "Quantity": "1", "Cast": "true"})
    assert r.messages == []
    assert balances(token)[BOB] == "1"


@pytest.mark.parametrize("qty", ["-5", "0", "1.5", "abc", "01"])
def test_transfer_bad_quantity_is_an_error(token, qty):
    r = token.send({"Action": "Transfer", "Recipient": BOB, "Quantity": qty})
    assert r.error and "Quantity" in r.error
    assert balances(token)[token.owner] == "1000"


def test_big_quantities(token):
    big = "123456789012345678901234567890"
    token.send({"Action": "Mint", "Quantity": big})
    token.send({"Action": "Transfer", "Recipient": ALICE, "Quantity": big})
    b = balances(token)
    assert b[ALICE] == big and b[token.owner] == "1000"
    (m,) = token.send({"Action": "Total-Supply"}, from_=ALICE).messages
    assert m["Data"] == str(10 ** 16 + 1000 + int(big))


def test_balance_of_account(token):
    token.send({"Action": "Transfer", "Recipient": ALICE, "Quantity": "7"})
    (m,) = token.send({"Action": "Balance", "Recipient": ALICE}, from_=BOB).messages
    t = tags_of(m)
    assert m["Data"] == "7" and t["Balance"] == "7" and t["Account"] == ALICE and t["Ticker"] == "PNTS"
    (m,) = token.send({"Action": "Balance"}, from_=BOB).messages
    assert m["Data"] == "0" and tags_of(m)["Account"] == BOB


def test_burn(token):
    r = token.send({"Action": "Burn", "Quantity": "100"})
    assert r.messages[0]["Data"] == "\x1b[90mSuccessfully burned \x1b[34m100\x1b[0m"     # aos's colours
    assert balances(token)[token.owner] == "900"
    (m,) = token.send({"Action": "Total-Supply"}, from_=ALICE).messages
    assert m["Data"] == str(10 ** 16 + 900)
    r = token.send({"Action": "Burn", "Quantity": "5"}, from_=ALICE)        # more than ALICE has: an Error
    assert "less than or equal to the current balance" in r.error and r.messages == []


def test_loadable_via_eval(runtime):
    p = LuaProcess.spawn(runtime)
    r = p.eval(blueprint("token"))
    assert r.error is None and "token loaded" in r.output["data"]
    (m,) = p.send({"Action": "Balance", "Recipient": p.id}, from_=ALICE).messages
    assert m["Data"] == str(10 ** 16)
