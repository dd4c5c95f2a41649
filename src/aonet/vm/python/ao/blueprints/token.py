"""AO's token blueprint (aos `blueprints/token.lua`, ao Standard Token) for Python processes.

    from ao.blueprints import token          # in the process source, or in an Eval
    token.name, token.ticker = "My Coin", "MYC"

Same messages in, same messages out as the Lua blueprint: Info, Balance, Balances, Transfer (with
Debit-Notice / Credit-Notice, X- tag forwarding, Cast, Transfer-Error), Mint (only the process
itself may mint, as in aos), Total-Supply, Burn. Balances are decimal strings of unbounded integers.
State lives in this module's globals; importing it again does not reset it.
"""
from __future__ import annotations

import json
import re

from ao import on, process, send

GRAY, BLUE, GREEN, RESET = "\x1b[90m", "\x1b[34m", "\x1b[32m", "\x1b[0m"
variant = "0.0.3"
denomination = 12
balances: dict[str, str] = {process.id: str(10000 * 10 ** denomination)}
total_supply = str(10000 * 10 ** denomination)
name = "Points Coin"
ticker = "PNTS"
logo = "SBCCXwwecBlDqRLUjb8dYABExTJXLieawf7m2aBJ-KY"

_INT = re.compile(r"[+-]?[0-9]+")


class TokenError(ValueError):
    """A request the blueprint refuses (the message ends with an Error, state unchanged)."""


def _require(ok: bool, text: str) -> None:
    if not ok:
        raise TokenError(text)


def _num(value) -> int:
    if not isinstance(value, str) or not _INT.fullmatch(value.strip()):
        raise TokenError(f"not an integer quantity: {value!r}")
    return int(value)


@on("Info")
def info(msg):
    msg.reply(Name=name, Ticker=ticker, Logo=logo, Denomination=str(denomination))


@on("Balance")
def balance(msg):
    bal = "0"
    recipient, target = msg.tags.get("Recipient"), msg.tags.get("Target")
    if recipient:
        bal = balances.get(recipient, "0")
    elif target and target in balances:
        bal = balances[target]
    elif msg.From in balances:
        bal = balances[msg.From]
    msg.reply(bal, Balance=bal, Ticker=ticker, Account=recipient or msg.From)


@on("Balances")
def all_balances(msg):
    msg.reply(json.dumps(balances, separators=(",", ":")))


@on("Transfer")
def transfer(msg):
    recipient, quantity = msg.Recipient, msg.Quantity
    _require(isinstance(recipient, str), "Recipient is required!")
    _require(isinstance(quantity, str), "Quantity is required!")
    qty = _num(quantity)
    _require(qty > 0, "Quantity must be greater than 0")
    sender = msg.From
    balances.setdefault(sender, "0")
    balances.setdefault(recipient, "0")
    have = int(balances[sender])
    if qty <= have:
        balances[sender] = str(have - qty)
        balances[recipient] = str(int(balances[recipient]) + qty)
        if msg.Cast is None:
            # X- tags go on both notices verbatim (as a tag list: keyword names would turn _ into -).
            forwarded, seen = [], set()
            for t in msg.tag_list:
                n = t["name"]
                if n.startswith("X-") and n not in seen:
                    seen.add(n)
                    forwarded.append({"name": n, "value": t["value"]})
            msg.reply(f"{GRAY}You transferred {BLUE}{quantity}{GRAY} to {GREEN}{recipient}{RESET}",
                      Action="Debit-Notice", Recipient=recipient, Quantity=quantity,
                      Tags=[t for t in forwarded if t["name"] not in ("X-Reference", "X-Origin")])
            send(recipient, f"{GRAY}You received {BLUE}{quantity}{GRAY} from {GREEN}{sender}{RESET}",
                 Action="Credit-Notice", Sender=sender, Quantity=quantity, Tags=forwarded)
    else:
        msg.reply(Action="Transfer-Error", **{"Message-Id": msg.Id}, Error="Insufficient Balance!")


@on("Mint")
def mint(msg):
    global total_supply
    quantity = msg.Quantity
    _require(isinstance(quantity, str), "Quantity is required!")
    _require(_num(quantity) > 0, "Quantity must be greater than zero!")
    balances.setdefault(process.id, "0")
    if msg.From == process.id:
        balances[msg.From] = str(_num(balances[msg.From]) + _num(quantity))
        total_supply = str(_num(total_supply) + _num(quantity))
        msg.reply(f"{GRAY}Successfully minted {BLUE}{quantity}{RESET}")
    else:
        msg.reply(Action="Mint-Error", **{"Message-Id": msg.Id},
                  Error=f"Only the Process Id can mint new {ticker} tokens!")


@on("Total-Supply")
def supply(msg):
    _require(msg.From != process.id, "Cannot call Total-Supply from the same process!")
    msg.reply(total_supply, Action="Total-Supply", Ticker=ticker)


@on("Burn")
def burn(msg):
    global total_supply
    quantity = msg.tags.get("Quantity")
    _require(isinstance(quantity, str), "Quantity is required!")
    _require(_num(quantity) <= _num(balances.get(msg.From)),
             "Quantity must be less than or equal to the current balance!")
    balances[msg.From] = str(_num(balances[msg.From]) - _num(quantity))
    total_supply = str(_num(total_supply) - _num(quantity))
    msg.reply(f"{GRAY}Successfully burned {BLUE}{quantity}{RESET}")
