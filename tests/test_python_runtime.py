"""The CPython process runtime, message by message through aonet.vm.wasm (docs/python-processes.md)."""
from __future__ import annotations

import hashlib
import json
import textwrap

import pytest

from aonet.vm.base import Limits
from aonet.vm.python import MODULE_FORMAT, PythonRuntime, module_tags, python_module
from aonet.vm.python import stdlib

PID = "P" * 43
OWNER = "O" * 43
MOD = "M" * 43
ALICE = "A" * 43
MU = "U" * 43


def env(*ptags: tuple[str, str]) -> dict:
    tags = [("Data-Protocol", "ao"), ("Type", "Process"), ("Module", MOD), *ptags]
    return {"Process": {"Id": PID, "Owner": OWNER, "Tags": [{"name": n, "value": v} for n, v in tags]},
            "Module": {"Id": MOD, "Owner": OWNER, "Tags": []}}


_n = [0]


def m(action: str | None = None, data: str = "", *, frm: str = OWNER, owner: str | None = None,
      ts: int = 1_700_000_000_000, **tags: str) -> dict:
    _n[0] += 1
    tl = [{"name": "Action", "value": action}] if action else []
    tl += [{"name": k.replace("_", "-"), "value": v} for k, v in tags.items()]
    return {"Id": f"id-{_n[0]:040d}", "From": frm, "Owner": owner or frm, "Target": PID, "Data": data,
            "Tags": tl, "Timestamp": ts, "Block-Height": 100, "Nonce": _n[0], "Epoch": 0, "Cron": False}


def boot_msg(source: str) -> dict:
    return {"Id": PID, "From": OWNER, "Owner": OWNER, "Target": PID, "Data": textwrap.dedent(source),
            "Tags": [{"name": "Type", "value": "Process"}, {"name": "Module", "value": MOD}],
            "Timestamp": 1_700_000_000_000, "Block-Height": 100, "Nonce": 0, "Epoch": 0, "Cron": False}


@pytest.fixture(scope="module")
def rt() -> PythonRuntime:
    return PythonRuntime()


class Proc:
    """A process under test: an instance plus its env."""

    def __init__(self, rt: PythonRuntime, source: str = "", limits: Limits = Limits(), ptags=()):
        self.inst = rt.instantiate(limits=limits)
        self.env = env(*ptags)
        self.boot = self.inst.handle(boot_msg(source), self.env)

    def __call__(self, msg: dict):
        return self.inst.handle(msg, self.env)

    def eval(self, code: str, **kw):
        return self(m("Eval", textwrap.dedent(code), **kw))


def tags(msg: dict) -> dict:
    return {t["name"]: t["value"] for t in msg["Tags"]}


PING = """
from ao import on, send, receive, process, inbox, ANY

count = 0

@on("Ping")
def ping(msg):
    global count
    count += 1
    msg.reply("pong", Action="Pong", Count=count)
"""


def test_module_is_an_abi_module():
    mod = python_module()
    assert mod[:4] == b"\0asm"
    assert MODULE_FORMAT == "wasm32-wasi-ao1"
    assert {"name": "Module-Format", "value": MODULE_FORMAT} in module_tags()


def test_boot_runs_the_process_source(rt):
    p = Proc(rt, "print('hello from boot')\nx = 41\n")
    assert p.boot.error is None
    assert p.boot.output == "hello from boot\n"
    r = p.eval("print('side'); x + 1")
    assert (r.error, r.output) == (None, "side\n42\n")


def test_eval_only_from_owner(rt):
    p = Proc(rt, "secret = 1")
    r = p.eval("secret = 2", frm=ALICE)
    assert r.error is None and r.output == ""
    assert p.eval("secret, len(ao.inbox), ao.inbox[0].From == %r" % ALICE).output == "(1, 1, True)\n"


def test_handler_reply_has_ao_shape(rt):
    p = Proc(rt, PING)
    r = p(m("Ping", frm=ALICE, Reference="9"))
    assert r.error is None
    (out,) = r.messages
    assert out["Target"] == ALICE and out["Data"] == "pong"
    assert out["Anchor"] == "%032d" % 1
    t = tags(out)
    assert t == {"Data-Protocol": "ao", "Variant": "ao.TN.1", "Type": "Message", "Reference": "1",
                 "Action": "Pong", "Count": "1", "X-Reference": "9"}
    assert all(isinstance(x["value"], str) for x in out["Tags"])
    assert tags(p(m("Ping", frm=ALICE)).messages[0])["Count"] == "2"


def test_matching_by_tags_functions_and_fallthrough(rt):
    p = Proc(rt, """
        import re
        from ao import on, send, ANY
        seen = []
        @on(Action="Order", Side=("buy", "sell"), Amount=re.compile(r"[0-9]+"))
        def order(msg): seen.append(("order", msg.Side, int(msg.Amount)))
        @on(lambda msg: msg.Data.startswith("!"), fallthrough=True)
        def bang(msg): seen.append(("bang", msg.Data))
        @on(Note=ANY)
        def note(msg): seen.append(("note", msg.Note))
    """)
    p(m("Order", Side="buy", Amount="12"))
    p(m("Order", Side="hold", Amount="12"))          # no match -> inbox
    p(m(None, "!x", Note="n1"))                       # bang falls through to note
    p(m(None, "plain"))                               # inbox
    assert p.eval("seen, len(ao.inbox)").output == \
        "([('order', 'buy', 12), ('bang', '!x'), ('note', 'n1')], 2)\n"


def test_send_spawn_assign_shapes(rt):
    p = Proc(rt, """
        from ao import on, send, spawn, assign
        @on("Go")
        def go(msg):
            send(msg.From, {"a": [1, 2]}, Action="Json", Message_Id=msg.Id, N=5, Flag=True)
            send({"Target": "T" * 43, "Data": "raw", "Action": "Dict"})
            spawn(None, "print('child')", Name="kid")
            assign(["Q" * 43], msg.Id)
    """)
    mm = m("Go", frm=ALICE)
    r = p(mm)
    assert r.error is None
    j, d = r.messages
    assert json.loads(j["Data"]) == {"a": [1, 2]}
    tj = tags(j)
    assert tj["Content-Type"] == "application/json" and tj["Message-Id"] == mm["Id"]
    assert (tj["N"], tj["Flag"], tj["Reference"]) == ("5", "true", "1")
    assert d["Target"] == "T" * 43 and d["Data"] == "raw" and tags(d)["Action"] == "Dict"
    (s,) = r.spawns
    ts = tags(s)
    assert s["Data"] == "print('child')"
    assert (ts["Type"], ts["Module"], ts["From-Process"], ts["Name"], ts["Reference"]) == \
        ("Process", MOD, PID, "kid", "3")
    assert r.assignments == [{"Processes": ["Q" * 43], "Message": mm["Id"]}]


def test_forward_and_reply_to(rt):
    p = Proc(rt, """
        from ao import on
        @on("Relay")
        def relay(msg): msg.forward("T" * 43, Extra="1")
    """)
    r = p(m("Relay", "body", frm=ALICE, Reference="4", Color="red"))
    (f,) = r.messages
    t = tags(f)
    assert f["Target"] == "T" * 43 and f["Data"] == "body"
    assert (t["Reply-To"], t["X-Reference"], t["X-Origin"], t["Color"], t["Extra"], t["Action"]) == \
        (ALICE, "4", ALICE, "red", "1", "Relay")


def test_await_receive_suspends_across_messages(rt):
    p = Proc(rt, """
        from ao import on, send, receive
        log = []
        @on("Ask")
        async def ask(msg):
            sent = send("T" * 43, Action="Question")
            answer = await sent.receive()
            log.append(answer.Data)
            extra = await receive(Action="More", From=msg.From)
            msg.reply(answer.Data + "+" + extra.Data, Action="Done")
    """)
    r1 = p(m("Ask", frm=ALICE))
    (q,) = r1.messages
    ref = tags(q)["Reference"]
    assert p(m(None, "noise", frm="T" * 43)).messages == []          # no X-Reference: inbox
    snap = p.inst.snapshot()                                        # the waiting coroutine is in memory
    r2 = p(m(None, "42", frm="T" * 43, X_Reference=ref))
    assert r2.error is None and r2.messages == []
    r3 = p(m("More", "7", frm=ALICE))
    (done,) = r3.messages
    assert (done["Target"], done["Data"], tags(done)["Action"]) == (ALICE, "42+7", "Done")
    p2 = rt.instantiate(image=snap)                                 # a restored copy resumes too
    p2.handle(m(None, "1", frm="T" * 43, X_Reference=ref), p.env)
    (d2,) = p2.handle(m("More", "2", frm=ALICE), p.env).messages
    assert d2["Data"] == "1+2"


def test_error_gives_traceback_and_keeps_state(rt):
    p = Proc(rt, """
        from ao import on, send
        total = 0
        @on("Add")
        def add(msg):
            global total
            total += int(msg.N)
            send(msg.From, "added")
            if total > 10:
                raise ValueError("too much: %d" % total)
    """)
    assert p(m("Add", N="6")).error is None
    r = p(m("Add", N="7"))
    assert r.messages == []
    assert "Traceback (most recent call last)" in r.error
    assert 'File "<process>", line 10, in add' in r.error
    assert "ValueError: too much: 13" in r.error
    assert "raise ValueError" in r.error                     # the source line is shown
    assert p.eval("total").output == "6\n"
    assert p.eval("1/0").error.strip().endswith("ZeroDivisionError: division by zero")


def test_trust_rules(rt):
    p = Proc(rt, PING, ptags=(("Authority", MU),))
    r = p(m("Ping", frm=ALICE, owner="X" * 43))                 # forwarded by a stranger
    assert [x["Data"] for x in r.messages] == ["Message is not trusted by this process!"]
    assert r.messages[0]["Target"] == ALICE
    r = p(m("Ping", frm=ALICE, owner=MU))                       # forwarded by the authority
    assert tags(r.messages[0])["Action"] == "Pong"
    r = p(m("Ping", frm=ALICE))                                 # signed by the sender itself
    assert tags(r.messages[0])["Action"] == "Pong"
    assert p.eval("process.owner == %r and process.authorities == [%r]" % (OWNER, MU)).output == "True\n"


def test_time_random_and_blocked_modules(rt):
    p = Proc(rt, "")
    assert p.eval("import time, datetime; time.time(), str(datetime.datetime.now())", ts=1_700_000_123_456).output \
        == "(1700000123.456, '2023-11-14 22:15:23.456000')\n"
    for mod in ("socket", "_socket", "subprocess", "select", "asyncio", "multiprocessing"):
        r = p.eval(f"import {mod}")
        assert "ModuleNotFoundError" in r.error, mod
    r = p.eval("import _thread; _thread.start_new_thread(print, ())")
    assert "can't start new thread" in r.error
    r = p.eval("import threading; threading.Thread(target=print).start()")
    assert "can't start new thread" in r.error
    r = p.eval("open('/etc/passwd').read()")
    assert "Error" in r.error
    assert p.eval("import os; os.environ.get('HOME'), os.listdir('/')").output == "(None, [])\n"
    assert "OSError" in p.eval("import time; time.sleep(0.01)").error
    assert p.eval("import hashlib; hashlib.sha256(b'a').hexdigest()[:8]").output == "'ca978112'\n"


def test_stdlib_allowlist_imports(rt):
    p = Proc(rt, "")
    names = list(stdlib.MODULES) + list(stdlib.PACKAGES) + ["collections.abc", "json.decoder", "urllib.parse",
                                                             "importlib.util", "encodings.idna", "tomllib"]
    r = p.eval("import importlib\nfor n in %r: importlib.import_module(n)\n'ok'" % names)
    assert (r.error, r.output) == (None, "'ok'\n")


LOG_SOURCE = """
import random, json
from ao import on
from ao.blueprints import token
rolls = []
@on("Roll")
def roll(msg):
    rolls.append(random.randrange(10**9))
    msg.reply(json.dumps(rolls), Id_Hash=str(hash("x")), At=str(__import__("time").time()))
"""


def _log():
    _n[0] = 10_000
    msgs = [m("Roll", frm=ALICE), m("Transfer", frm=PID, Recipient=ALICE, Quantity="5"), m("Roll", frm=ALICE),
            m("Eval", "import os; os.urandom(8).hex(), {1, 'a', 2.5}")]
    return msgs


def test_same_log_gives_identical_memory(rt):
    images, results = [], []
    for _ in range(2):
        p = Proc(rt, LOG_SOURCE)
        assert p.boot.error is None
        rs = [p(x) for x in _log()]
        assert all(r.error is None for r in rs), [r.error for r in rs]
        results.append([(r.output, r.messages, r.gas_used) for r in rs])
        images.append(hashlib.sha256(p.inst.snapshot()).hexdigest())
    assert results[0] == results[1]
    assert images[0] == images[1]
    assert tags(results[0][0][1][0])["Id-Hash"] == tags(results[1][0][1][0])["Id-Hash"]


def test_snapshot_restores_into_a_fresh_instance(rt):
    p = Proc(rt, PING)
    p(m("Ping", frm=ALICE))
    image = p.inst.snapshot()
    q = rt.instantiate(image=image)
    (out,) = q.handle(m("Ping", frm=ALICE), p.env).messages
    assert tags(out)["Count"] == "2"
    assert hashlib.sha256(q.snapshot()).hexdigest() != hashlib.sha256(image).hexdigest()


def test_compute_limit_traps_and_process_stays_usable(rt):
    p = Proc(rt, "n = 1", limits=Limits(compute=1_000_000_000))
    assert p.boot.error is None
    r = p.eval("n = 2\nwhile True: pass")
    assert "Compute-Limit" in r.error
    assert p.eval("n").output == "1\n"


def test_memory_limit_fails_cleanly_and_process_stays_usable(rt):
    p = Proc(rt, "keep = [1]", limits=Limits(memory=64 << 20))
    assert p.boot.error is None
    r = p.eval("keep.append(1); big = bytearray(200_000_000)")
    assert "MemoryError" in r.error
    assert p.eval("keep").output == "[1]\n"
    assert p.eval("len(bytearray(1_000_000))").output == "1000000\n"


def test_deep_recursion_is_an_error(rt):
    p = Proc(rt, "def f(n): return f(n + 1)")
    r = p.eval("f(0)")
    assert "RecursionError" in r.error
    assert p.eval("2 + 2").output == "4\n"


def test_top_level_await_in_eval(rt):
    p = Proc(rt, "from ao import receive, send")
    r = p.eval("got = await receive(Action='Wake')\nprint('woke', got.Data)")
    assert r.error is None and r.output == ""
    r = p(m("Wake", "now", frm=ALICE))
    assert r.output == "woke now\n"


def test_example_process(rt):
    from pathlib import Path
    source = (Path(__file__).parent.parent / "examples" / "hello.py").read_text()
    p = Proc(rt, source)
    assert p.boot.error is None, p.boot.error
    r = p(m("Hello", frm=ALICE))
    assert r.output == "hello number 1\n"
    assert (r.messages[0]["Data"], tags(r.messages[0])["Action"]) == ("Hello! You are visitor #1.", "Hello-Reply")
    token = "T" * 43
    (ask,) = p(m("Ask-Balance", frm=ALICE, Token=token)).messages
    assert ask["Target"] == token and tags(ask)["Action"] == "Balance"
    (ans,) = p(m(None, "250", frm=token, X_Reference=tags(ask)["Reference"], Balance="250")).messages
    assert (ans["Target"], ans["Data"], tags(ans)["Action"]) == (ALICE, "250", "Balance-Is")
    assert p.eval("greetings").output == "1\n"


def test_bad_boot_program_leaves_an_empty_usable_process(rt):
    p = Proc(rt, "def broken(:\n")
    assert "SyntaxError" in p.boot.error
    assert p.eval("1", frm=ALICE).output == ""          # the next sender does not become the owner
    r = p.eval("from ao import on\n@on('Ping')\ndef ping(msg): msg.reply('pong')\n'loaded'")
    assert (r.error, r.output) == (None, "'loaded'\n")
    assert p(m("Ping", frm=ALICE)).messages[0]["Data"] == "pong"
    assert p.eval("ao.process.id, ao.process.owner").output == repr((PID, OWNER)) + "\n"


def test_malformed_messages_are_errors_not_crashes(rt):
    p = Proc(rt, PING)
    for bad in ({"Id": "x", "From": ALICE, "Owner": ALICE, "Tags": "not a list"},
                {"Id": "y", "From": ALICE, "Owner": ALICE, "Tags": [{"value": "no name"}, 5]}):
        r = p(bad)
        assert "BadMessage: Tags must be a list of {name, value} objects" in r.error
    r = p(m("Ping", frm=ALICE))
    assert r.error is None and tags(r.messages[0])["Count"] == "1"


def test_messages_from_the_process_itself_may_eval(rt):
    p = Proc(rt, "x = 5")
    assert p.eval("x * 2", frm=PID).output == "10\n"


def test_assignments_need_assignable(rt):
    p = Proc(rt, PING)
    other = dict(m("Ping", frm=ALICE), Target="Z" * 43)
    r = p(other)
    assert [x["Data"] for x in r.messages] == ["Assignment is not trusted by this process!"]
    p.eval("ao.assignable(Action='Ping')")
    r = p(dict(m("Ping", frm=ALICE), Target="Z" * 43))
    assert tags(r.messages[0])["Action"] == "Pong"


def test_verbatim_tag_names(rt):
    p = Proc(rt, """
        from ao import on, send
        @on("Go")
        def go(msg):
            send({"Target": msg.From, "my_tag": "1", "Tags": {"other_tag": "2"}}, snake_case="3")
            send(msg.From, Tags=[{"name": "list_tag", "value": "4"}], Anchor="a" * 32)
    """)
    a, b = p(m("Go", frm=ALICE)).messages
    assert (tags(a)["my_tag"], tags(a)["other_tag"], tags(a)["snake-case"]) == ("1", "2", "3")
    assert tags(b)["list_tag"] == "4" and b["Anchor"] == "a" * 32
