"""The bridge the C entry point calls: handle(msg JSON, env JSON) -> result JSON (all str).

Everything a message may change lives in this interpreter's memory; the host snapshots that memory
after each message and restores it when a message fails, so this code never has to undo anything.
"""
from __future__ import annotations

import ast
import json
import linecache
import sys
import traceback

from ._handlers import ASSIGNABLE, HANDLERS, INBOX, MAX_INBOX, drive
from ._msg import Msg
from ._outbox import OUTBOX, send
from ._process import PROCESS

_printed: list[str] = []


class _Capture:
    """sys.stdout/sys.stderr: print() output becomes the message's Output."""
    encoding = "utf-8"
    errors = "strict"

    def write(self, s: str) -> int:
        _printed.append(s)
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


sys.stdout = sys.stderr = _Capture()


def _default(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


# The C encoder and scanner, made once: json.dumps/json.loads rebuild them on every call.
_c_encode = json.encoder.c_make_encoder(None, _default, json.encoder.c_encode_basestring, None, ":", ",",
                                        False, False, True)
_c_scan = json.scanner.c_make_scanner(json.JSONDecoder())


def _encode(obj) -> str:
    return "".join(_c_encode(obj, 0))


def _decode(text: str):
    try:
        obj, end = _c_scan(text, 0)
        if end == len(text):
            return obj
    except StopIteration:
        pass
    return json.loads(text)      # the slow path, with json's error messages
_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_CO_COROUTINE = 0x80


def handle(msg_bytes: str, env_bytes: str) -> str:
    """One message in, one AO result out; never raises."""
    _printed.clear()
    OUTBOX.clear()
    try:
        raw = _decode(msg_bytes)
        env = None if PROCESS.booted else _decode(env_bytes)    # only the boot reads the env
        if type(raw) is not dict or (env is not None and type(env) is not dict):
            raise TypeError("msg and env must be JSON objects")
        _run(raw, env)
        out = {"Output": "".join(_printed), "Messages": OUTBOX.messages, "Spawns": OUTBOX.spawns,
               "Assignments": OUTBOX.assignments}
        return _encode(out)
    except BaseException as exc:   # the host restores memory on Error, so nothing to undo here
        return _error(exc)


def _error(exc: BaseException) -> bytes:
    try:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename.startswith("<frozen ao."):
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:
        text = f"{type(exc).__name__}: {exc}"
    return _encode({"Error": text, "Output": "".join(_printed)})


def _run(raw: dict, env: dict | None) -> None:
    msg = Msg(raw)
    if not PROCESS.booted:
        PROCESS.init(env, raw)
        import ao
        PROCESS.namespace.setdefault("ao", ao)
        if msg.get("Type") == "Process":
            _boot(msg)
            return
    frm, owner = raw.get("From"), raw.get("Owner")
    if frm != owner and not PROCESS.trusts(msg):
        send(frm, "Message is not trusted by this process!")
        print(f"Message is not trusted! From: {frm} - Owner: {owner}")
        return
    target = raw.get("Target")
    if target and target != PROCESS.id and not any(m(msg) for m in ASSIGNABLE):
        send(frm, "Assignment is not trusted by this process!")
        print(f"Assignment is not trusted! From: {frm} - Owner: {owner}")
        return
    if msg.tags.get("Action") == "Eval" and (frm == PROCESS.owner or frm == PROCESS.id):
        _eval(raw.get("Data") or "")
        return
    if not HANDLERS.dispatch(msg):
        INBOX.append(msg)
        if len(INBOX) > MAX_INBOX:
            del INBOX[: len(INBOX) - MAX_INBOX]


def _source(text: str, filename: str):
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    return compile(text, filename, "exec", flags=_TOP_LEVEL_AWAIT | ast.PyCF_ONLY_AST, dont_inherit=True)


def _boot(msg: Msg) -> None:
    """The Process message: its Data is the process's Python program (if any)."""
    data = msg.raw.get("Data") or ""
    if isinstance(data, str) and data.strip() and data.strip() != "NODATA":
        _exec(_source(data, "<process>"), "<process>", last_value=False)


def _eval(code: str) -> None:
    """Eval from the owner: run code in the process namespace; print the last expression's repr."""
    value = _exec(_source(code, "<eval>"), "<eval>", last_value=True)
    if value is not None:
        print(repr(value))


def _exec(tree: ast.Module, filename: str, last_value: bool):
    ns = PROCESS.namespace
    last = last_stmt = None
    if last_value and tree.body and isinstance(tree.body[-1], ast.Expr):
        last_stmt = tree.body.pop()
        last = ast.Expression(last_stmt.value)
    code = compile(tree, filename, "exec", flags=_TOP_LEVEL_AWAIT, dont_inherit=True)
    if code.co_flags & _CO_COROUTINE:       # top-level await: the code runs as a handler would
        if last is not None:
            tree.body.append(last_stmt)
            code = compile(tree, filename, "exec", flags=_TOP_LEVEL_AWAIT, dont_inherit=True)
        drive(eval(code, ns), None)
        return None
    exec(code, ns)
    if last is None:
        return None
    lcode = compile(last, filename, "eval", flags=_TOP_LEVEL_AWAIT, dont_inherit=True)
    if lcode.co_flags & _CO_COROUTINE:
        drive(eval(lcode, ns), None)
        return None
    return eval(lcode, ns)
