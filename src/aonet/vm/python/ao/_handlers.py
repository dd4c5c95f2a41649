"""Handlers: `@on(...)` registers a function for the messages that match; `await receive(...)` waits.

A handler may be a plain function or an `async def`. A coroutine that awaits `receive(...)` is kept
(it lives in the interpreter's memory, so it survives across messages and snapshots) and resumed
by the first later message that matches; that message goes to it and to nothing else.
"""
from __future__ import annotations

import re as _re


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()   # matches any present value: on(Quantity=ANY)


def _value_test(expected):
    if expected is ANY:
        return lambda v: v is not None
    if isinstance(expected, str):
        return lambda v: v == expected
    if isinstance(expected, _re.Pattern):
        return lambda v: isinstance(v, str) and expected.fullmatch(v) is not None
    if isinstance(expected, (tuple, list, set, frozenset)):
        options = frozenset(expected)
        return lambda v: v in options
    if callable(expected):
        return lambda v: bool(expected(v))
    raise TypeError(f"cannot match a tag against {expected!r}")


def matcher(pattern=None, tags: dict | None = None):
    """Turn a pattern into msg -> bool. str: the Action; callable: a predicate; dict: tag -> spec."""
    spec: dict = {}
    pred = None
    if pattern is None:
        pass
    elif isinstance(pattern, str):
        spec["Action"] = pattern
    elif isinstance(pattern, dict):
        spec.update(pattern)
    elif callable(pattern):
        pred = pattern
    else:
        raise TypeError(f"a handler pattern is a str (Action), a dict of tags or a function, not {pattern!r}")
    for k, v in (tags or {}).items():
        spec[k.replace("_", "-") if "_" in k else k] = v
    if len(spec) == 1 and pred is None:
        ((name, expected),) = spec.items()
        if isinstance(expected, str):
            return lambda msg: msg.get(name) == expected
    tests = [(name, _value_test(v)) for name, v in spec.items()]
    if pred is None:
        return lambda msg: all(t(msg.get(n)) for n, t in tests)
    return lambda msg: all(t(msg.get(n)) for n, t in tests) and bool(pred(msg))


class Handler:
    __slots__ = ("name", "match", "fn", "runs", "fallthrough", "action")

    def __init__(self, name: str, match, fn, runs: int | None, fallthrough: bool, action: str | None = None):
        self.name, self.match, self.fn, self.runs, self.fallthrough = name, match, fn, runs, fallthrough
        self.action = action      # set when the pattern is exactly one Action: a fast pre-check

    def __repr__(self) -> str:
        return f"Handler({self.name!r}, runs={self.runs})"


class Handlers:
    """The ordered handler list; the first match runs, unless it was added with fallthrough=True."""

    def __init__(self) -> None:
        self.list: list[Handler] = []
        self.waiting: list[tuple] = []     # (match, coroutine) suspended in `await receive(...)`

    def add(self, name: str, pattern, fn, runs: int | None = None, fallthrough: bool = False,
            first: bool = False, **tags) -> Handler:
        """Add or replace (same name, same place) a handler."""
        action = pattern if isinstance(pattern, str) and not tags else None
        h = Handler(name, matcher(pattern, tags), fn, runs, fallthrough, action)
        for i, old in enumerate(self.list):
            if old.name == name:
                self.list[i] = h
                return h
        if first:
            self.list.insert(0, h)
        else:
            self.list.append(h)
        return h

    def remove(self, name: str) -> bool:
        n = len(self.list)
        self.list = [h for h in self.list if h.name != name]
        return len(self.list) != n

    def names(self) -> list[str]:
        return [h.name for h in self.list]

    def dispatch(self, msg) -> bool:
        """Run the message; True when something took it (else it goes to the inbox)."""
        if self.waiting:
            for i, (match, coro) in enumerate(self.waiting):
                if match(msg):
                    del self.waiting[i]
                    drive(coro, msg)
                    return True
        taken = False
        action = msg.tags.get("Action")
        for h in list(self.list):
            a = h.action
            if a is not None:
                if a != action:
                    continue
            elif not h.match(msg):
                continue
            taken = True
            if h.runs is not None:
                h.runs -= 1
                if h.runs <= 0:
                    self.list.remove(h)
            r = h.fn(msg)
            if r is not None and hasattr(r, "send") and hasattr(r, "throw"):
                drive(r, None)
            if not h.fallthrough:
                break
        return taken


HANDLERS = Handlers()


class _Wait:
    """What `receive(...)` returns; awaiting it suspends the handler until a match arrives."""
    __slots__ = ("match",)

    def __init__(self, match):
        self.match = match

    def __await__(self):
        msg = yield self
        return msg


def receive(pattern=None, /, **tags) -> _Wait:
    """`msg = await receive(From=pid, Action="Answer")`: only inside an `async def` handler."""
    return _Wait(matcher(pattern, tags))


def drive(coro, value) -> None:
    """Run a coroutine until it finishes or waits for a message."""
    try:
        w = coro.send(value)
    except StopIteration:
        return
    if not isinstance(w, _Wait):
        coro.close()
        raise TypeError(f"a handler may only await receive(...), not {w!r}")
    HANDLERS.waiting.append((w.match, coro))


def on(pattern=None, /, *, name: str | None = None, runs: int | None = None, fallthrough: bool = False,
       first: bool = False, **tags):
    """Decorator: `@on("Ping")`, `@on(Action="Transfer", Quantity=ANY)`, `@on(lambda m: ...)`."""
    def deco(fn):
        HANDLERS.add(name or fn.__name__, pattern, fn, runs=runs, fallthrough=fallthrough, first=first, **tags)
        return fn
    return deco


def once(pattern=None, /, **kw):
    """Like on(), but the handler runs for one message only."""
    return on(pattern, runs=1, first=True, **kw)


MAX_INBOX = 10_000
INBOX: list = []          # messages no handler took (the oldest are dropped past MAX_INBOX)
ASSIGNABLE: list = []     # matchers for assignments this process accepts (AO's ao.addAssignable)


def assignable(pattern=None, /, **tags) -> None:
    """Accept assigned messages (Target is another process) that match this pattern."""
    ASSIGNABLE.append(matcher(pattern, tags))
