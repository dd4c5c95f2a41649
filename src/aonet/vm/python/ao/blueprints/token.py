"""AO's token blueprint (aos `blueprints/token.lua`, ao Standard Token) for Python processes.

    from ao.blueprints import token          # in the process source, or in an Eval
    token.name, token.ticker = "My Coin", "MYC"

Same messages in, same messages out as aonet's Lua blueprint (tests/token_cases.py runs against both):
Info, Balance, Balances, Transfer (Debit-Notice / Credit-Notice, X- tag forwarding, Cast,
Transfer-Error), Mint (the process itself or its owner; anyone else gets Mint-Error), Total-Supply,
Burn. Balances are decimal strings of unbounded integers. State lives in this module's globals;
importing it again does not reset it.
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

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class TokenError(ValueError):
    """A request the blueprint refuses (the message ends with an Error, state unchanged)."""


def _require(ok: bool, text: str) -> None:
    if not ok:
        raise TokenError(text)


def _quantity(msg) -> int:
    """The Quantity tag: a canonical positive decimal integer string ("1", "250"; not "01", "-5", "1.5")."""
    q = msg.tags.get("Quantity")
    _require(isinstance(q, str), "Quantity is required!")
    _require(_DECIMAL.fullmatch(q) is not None, "Quantity must be a decimal integer string!")
    n = int(q)
    _require(n > 0, "Quantity must be greater than 0!")
    return n


def _json(value) -> str:
    """JSON as the Lua blueprint writes it (sorted keys, no spaces), so both send the same bytes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _x_tags(msg) -> dict[str, str]:
    """The message's X- tags, in the order they came (first value wins)."""
    out: dict[str, str] = {}
    for t in msg.tag_list:
        n = t["name"]
        if n.startswith("X-") and n not in out:
            out[n] = t["value"]
    return out


@on("Info")
def info(msg):
    msg.reply(_json({"name": name, "ticker": ticker, "logo": logo, "denomination": str(denomination),
                     "supply": total_supply}),
              Name=name, Ticker=ticker, Logo=logo, Denomination=str(denomination))


@on("Balance")
def balance(msg):
    """AO's rule: the balance of Recipient, else of a Target tag that holds one, else of the sender."""
    recipient, target = msg.tags.get("Recipient"), msg.tags.get("Target")
    if recipient:
        bal = balances.get(recipient)
    elif target and target in balances:
        bal = balances[target]
    else:
        bal = balances.get(msg.From)
    bal = bal or "0"
    msg.reply(bal, Balance=bal, Ticker=ticker, Account=recipient or msg.From)


@on("Balances")
def all_balances(msg):
    msg.reply(_json(balances))


@on("Transfer")
def transfer(msg):
    recipient = msg.tags.get("Recipient")
    _require(isinstance(recipient, str) and recipient != "", "Recipient is required!")
    qty = _quantity(msg)
    sender = msg.From
    # as in aos, both accounts exist from now on, even when the transfer is refused
    balances.setdefault(sender, "0")
    balances.setdefault(recipient, "0")
    have = int(balances[sender])
    if qty > have:
        msg.reply(Action="Transfer-Error", Message_Id=msg.Id, Error="Insufficient Balance!")
        return
    balances[sender] = str(have - qty)
    balances[recipient] = str(int(balances[recipient]) + qty)
    if msg.Cast is not None:
        return
    q = msg.tags["Quantity"]
    x = _x_tags(msg)     # passed as Tags=: names verbatim (keyword names would turn _ into -)
    msg.reply(f"{GRAY}You transferred {BLUE}{q}{GRAY} to {GREEN}{recipient}{RESET}",
              Action="Debit-Notice", Recipient=recipient, Quantity=q,
              Tags={k: v for k, v in x.items() if k not in ("X-Reference", "X-Origin")})
    send(recipient, f"{GRAY}You received {BLUE}{q}{GRAY} from {GREEN}{sender}{RESET}",
         Action="Credit-Notice", Sender=sender, Quantity=q, Tags=x)


@on("Mint")
def mint(msg):
    """The process itself or its owner may mint (aos: the process only); the minter's balance grows."""
    global total_supply
    qty = _quantity(msg)
    if msg.From != process.id and msg.From != process.owner:
        msg.reply(Action="Mint-Error", Message_Id=msg.Id,
                  Error=f"Only the process or its owner can mint new {ticker} tokens!")
        return
    balances[msg.From] = str(int(balances.get(msg.From, "0")) + qty)
    total_supply = str(int(total_supply) + qty)
    msg.reply(f"{GRAY}Successfully minted {BLUE}{msg.tags['Quantity']}{RESET}")


@on("Total-Supply")
def supply(msg):
    _require(msg.From != process.id, "Cannot call Total-Supply from the same process!")
    msg.reply(total_supply, Action="Total-Supply", Ticker=ticker)


@on("Burn")
def burn(msg):
    global total_supply
    qty = _quantity(msg)
    have = int(balances.get(msg.From, "0"))
    _require(qty <= have, "Quantity must be less than or equal to the current balance!")
    balances[msg.From] = str(have - qty)
    total_supply = str(int(total_supply) - qty)
    msg.reply(f"{GRAY}Successfully burned {BLUE}{msg.tags['Quantity']}{RESET}")
