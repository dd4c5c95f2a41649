"""The aos-compatible Lua process library, message by message, through aonet.vm.wasm (PROTOCOL.md §8)."""
import json

import pytest

from aonet.vm.lua import LuaProcess, lua_module
from aonet.vm.lua.harness import fake_id
from aonet.vm.wasm import WasmRuntime

ALICE = fake_id("alice")
BOB = fake_id("bob")
MU = fake_id("mu")


@pytest.fixture(scope="module")
def runtime():
    rt = WasmRuntime()
    rt.compile(lua_module())
    return rt


@pytest.fixture
def proc(runtime):
    return LuaProcess.spawn(runtime)


def tags_of(m):
    return {t["name"]: t["value"] for t in m["Tags"]}


def out(result):
    assert result.error is None, result.error
    return result.output["data"] if isinstance(result.output, dict) else result.output


def test_boot_and_eval_returns_value(proc):
    assert proc.boot.error is None
    r = proc.eval("return 1 + 41")
    assert r.output == {"data": "42", "prompt": "aonet> "}
    assert r.gas_used > 0


def test_eval_statement_and_print_capture(proc):
    r = proc.eval("x = 10\nprint('x is', x)\nprint({1, 2})")
    assert out(r).splitlines()[0] == "x is\t10"
    assert out(r).splitlines()[1].startswith("table: ")
    assert out(proc.eval("return x * 2")) == "20"
    assert out(proc.eval("print('a') return 'b'")) == "a\nb"


def test_eval_from_stranger_goes_to_inbox(proc):
    r = proc.send({"Action": "Eval"}, "x = 99", from_=ALICE)
    assert r.error is None and r.output == ""
    assert out(proc.eval("return tostring(x) .. ' ' .. #Inbox .. ' ' .. Inbox[#Inbox].From")) == f"nil 1 {ALICE}"


def test_error_gives_traceback_and_rolls_back(proc):
    proc.eval("counter = 1")
    r = proc.eval("counter = 2\nlocal function f() error('boom') end\nf()")
    assert r.error is not None
    assert "boom" in r.error and "stack traceback" in r.error
    assert out(proc.eval("return counter")) == "1"


def test_syntax_error_is_an_error(proc):
    r = proc.eval("return (")
    assert r.error and "unexpected symbol" in r.error


def test_handler_error_has_traceback(proc):
    proc.eval("Handlers.add('Crash', 'Crash', function(msg) local t = nil; return t.x end)")
    r = proc.send({"Action": "Crash"})
    assert "attempt to index" in r.error and "stack traceback" in r.error


def test_send_shape(proc):
    r = proc.eval(f"Send({{Target = '{ALICE}', Action = 'Ping', Count = 3, Data = 'hi', "
                  f"Tags = {{ Extra = 'yes' }} }})")
    (m,) = r.messages
    assert set(m) == {"Target", "Data", "Anchor", "Tags"}
    assert m["Target"] == ALICE and m["Data"] == "hi"
    assert m["Anchor"] == "0" * 31 + "1"
    assert m["Tags"][:4] == [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                             {"name": "Type", "value": "Message"}, {"name": "Reference", "value": "1"}]
    t = tags_of(m)
    assert t["Action"] == "Ping" and t["Count"] == "3" and t["Extra"] == "yes"
    assert all(isinstance(x["value"], str) for x in m["Tags"])
    r2 = proc.eval(f"ao.send({{Target = '{ALICE}', Data = {{ b = 2, a = 1 }} }})")
    (m2,) = r2.messages
    assert m2["Data"] == '{"a":1,"b":2}' and tags_of(m2)["Content-Type"] == "application/json"
    assert tags_of(m2)["Reference"] == "2"


def test_spawn_and_assign_shapes(proc):
    r = proc.eval(f"Spawn('{fake_id('mod')}', {{ Name = 'child' }}); "
                  f"Assign({{ Processes = {{ '{ALICE}' }}, Message = 'mid' }})")
    (s,) = r.spawns
    assert set(s) == {"Data", "Anchor", "Tags"} and s["Data"] == "NODATA"
    t = tags_of(s)
    assert t["Type"] == "Process" and t["From-Process"] == proc.id and t["Module"] == fake_id("mod")
    assert t["From-Module"] == proc.module_id and t["Name"] == "child" and t["Reference"] == "1"
    assert r.assignments == [{"Processes": [ALICE], "Message": "mid"}]


def test_handlers_order_patterns_and_continue(proc):
    proc.eval("""
      seen = {}
      Handlers.add('a', {Action = 'Go'}, function(m) table.insert(seen, 'a') end)
      Handlers.prepend('first', Handlers.utils.continue(Handlers.utils.hasMatchingTag('Action', 'Go')),
        function(m) table.insert(seen, 'first') end)
      Handlers.append('b', {Action = 'Go'}, function(m) table.insert(seen, 'b') end)
      Handlers.before('a').add('mid', function(m) return 'continue' end, function(m) table.insert(seen, 'mid') end)
    """)
    proc.send({"Action": "Go"})
    assert out(proc.eval("return table.concat(seen, ',')")) == "first,mid,a"
    proc.eval("Handlers.remove('a')")
    proc.send({"Action": "Go"})
    assert out(proc.eval("return table.concat(seen, ',')")) == "first,mid,a,first,mid,b"


def test_table_pattern_rules(proc):
    proc.eval("""
      hits = {}
      Handlers.add('wild', {Action = 'Pat', Quantity = '%d+', Who = '_'}, function(m) hits[#hits+1] = 'num' end)
      Handlers.add('alts', {Action = 'Pat', Kind = {'x', 'y'}}, function(m) hits[#hits+1] = 'alt' end)
      Handlers.add('fn', {Action = 'Pat', Size = function(v) return tonumber(v) and tonumber(v) > 10 end},
        function(m) hits[#hits+1] = 'fn' end)
    """)
    proc.send({"Action": "Pat", "Quantity": "123", "Who": "me"})
    proc.send({"Action": "Pat", "Quantity": "12a"})
    proc.send({"Action": "pat", "Kind": "y"})          # exact match is case-insensitive
    proc.send({"Action": "Pat", "Size": "11"})
    proc.send({"Action": "Pat", "Size": "9"})
    assert out(proc.eval("return table.concat(hits, ',') .. ' ' .. #Inbox")) == "num,alt,fn 2"


def test_once_and_max_runs(proc):
    proc.eval("n = 0; Handlers.once('one', {Action = 'Tick'}, function() n = n + 1 end)"
              "; Handlers.add('two', {Action = 'Tock'}, function() n = n + 10 end, 2)")
    for action in ("Tick", "Tick", "Tock", "Tock", "Tock"):
        proc.send({"Action": action})
    assert out(proc.eval("return n .. ' ' .. #Inbox")) == "21 2"


def test_reply_sets_x_reference_and_reply_to(proc):
    proc.eval("Handlers.add('Ask', 'Ask', function(m) m.reply({Data = 'answer', Action = 'Answer'}) end)")
    r = proc.send({"Action": "Ask", "Reference": "7", "X-Origin": "orig"}, from_=ALICE)
    (m,) = r.messages
    assert m["Target"] == ALICE and m["Data"] == "answer"
    t = tags_of(m)
    assert t["X-Reference"] == "7" and t["X-Origin"] == "orig" and t["Action"] == "Answer"
    r = proc.send({"Action": "Ask", "Reference": "8", "Reply-To": BOB}, from_=ALICE)
    assert r.messages[0]["Target"] == BOB
    r = proc.eval("Handlers.add('Hi', 'Hi', Handlers.utils.reply('hello'))")
    assert proc.send({"Action": "Hi"}, from_=BOB).messages[0]["Data"] == "hello"


def test_forward(proc):
    proc.eval(f"Handlers.add('Fwd', 'Fwd', function(m) m.forward('{BOB}', {{ Extra = 'e' }}) end)")
    r = proc.send({"Action": "Fwd", "Note": "n", "Reference": "3"}, "payload", from_=ALICE)
    (m,) = r.messages
    t = tags_of(m)
    assert m["Target"] == BOB and m["Data"] == "payload"
    assert t["Action"] == "Fwd" and t["Note"] == "n" and t["Extra"] == "e"
    assert t["X-Reference"] == "3" and t["X-Origin"] == ALICE and t["Reply-To"] == ALICE
    assert t["Reference"] == "1"          # its own reference, not the forwarded one


def test_receive_survives_across_messages(proc):
    proc.eval(f"""
      Handlers.add('Start', 'Start', function(m)
        local reply = Send({{Target = '{BOB}', Action = 'Question'}}).receive()
        Send({{Target = m.From, Action = 'Done', Data = 'bob said ' .. reply.Data}})
      end)
    """)
    r = proc.send({"Action": "Start"}, from_=ALICE)
    (q,) = r.messages
    assert q["Target"] == BOB and tags_of(q)["Action"] == "Question"
    ref = tags_of(q)["Reference"]
    # an unrelated message does not wake it
    r = proc.send({"Action": "Other", "X-Reference": ref}, "nope", from_=ALICE)
    assert r.messages == []
    r = proc.send({"Action": "Reply", "X-Reference": ref}, "42", from_=BOB)
    (done,) = r.messages
    assert done["Target"] == ALICE and done["Data"] == "bob said 42"
    assert out(proc.eval("local n = 0; for _ in pairs(Handlers.coroutines) do n = n + 1 end; return n")) == "0"


def test_receive_pattern_and_on_reply(proc):
    proc.eval(f"""
      got = {{}}
      Handlers.add('Wait', 'Wait', function(m)
        local a = Receive({{Action = 'First'}})
        got[#got+1] = a.Data
        local b = Receive({{Action = 'Second'}})
        got[#got+1] = b.Data
      end)
      Send({{Target = '{BOB}', Action = 'Q'}}).onReply(function(m) got[#got+1] = 'reply:' .. m.Data end)
    """)
    proc.send({"Action": "Wait"})
    proc.send({"Action": "Second"}, "too early")
    proc.send({"Action": "First"}, "1")
    proc.send({"X-Reference": "1"}, "r", from_=BOB)
    proc.send({"Action": "Second"}, "2")
    assert out(proc.eval("return table.concat(got, ',')")) == "1,reply:r,2"


def test_spawn_receive(proc):
    proc.eval(f"""
      Handlers.add('Make', 'Make', function(m)
        local notice = Spawn('{fake_id('mod')}', {{}}).receive()
        child = notice.Process
      end)
    """)
    r = proc.send({"Action": "Make"})
    ref = tags_of(r.spawns[0])["Reference"]
    proc.send({"Action": "Spawned", "Process": "CHILD", "Reference": ref}, from_=proc.id)
    assert out(proc.eval("return child")) == "CHILD"


def test_inbox_and_message_normalisation(proc):
    proc.send({"Action": "Note", "Content-Type": "application/json", "Data-Protocol": "ao"}, '{"k":[1,2]}',
              from_=ALICE)
    code = ("local m = Inbox[#Inbox]; return m.Action, m.Data.k[2], m.Tags['Data-Protocol'], "
            "tostring(m['Data-Protocol']), #m.TagArray, m.Timestamp == os.time()")
    assert out(proc.eval(code)) == "Note\t2\tao\tnil\t3\tfalse"
    r = proc.send({"Action": "Eval"}, "return os.time()")
    assert out(r) == str(proc.timestamp - 1)


def test_hyperbeam_lowercase_keys(proc):
    proc.eval("Handlers.add('lc', 'Lower', function(m) lower = m['Block-Height'] end)")
    msg = proc.message({"Action": "Lower"})
    msg["block-height"] = msg.pop("Block-Height")
    assert proc.instance.handle(msg, proc.env).error is None
    assert out(proc.eval("return lower")) == str(proc.block_height)


def test_trust_rule(runtime):
    p = LuaProcess.spawn(runtime, tags={"Authority": MU})
    p.eval("Handlers.add('Count', 'Count', function() counted = (counted or 0) + 1 end)")
    # signed by the sender itself: trusted
    assert p.send({"Action": "Count"}, from_=ALICE).error is None
    # forwarded by an unknown signer: dropped
    r = p.send({"Action": "Count", "From-Process": ALICE}, owner=BOB)
    assert "not trusted" in out(r)
    # forwarded by the authority: trusted
    p.send({"Action": "Count", "From-Process": ALICE}, owner=MU)
    assert out(p.eval("return counted .. ' ' .. tostring(ao.isTrusted({From = 'x', Owner = 'y'}))")) == "2 false"
    assert out(p.eval("return #ao.authorities .. ao.authorities[1]")) == "1" + MU


def test_assignments_need_assignable(proc):
    proc.eval("Handlers.add('A', 'Assigned', function() assigned = (assigned or 0) + 1 end)")
    proc.send({"Action": "Assigned"}, Target=ALICE)
    assert out(proc.eval("return tostring(assigned)")) == "nil"
    proc.eval("ao.addAssignable('ok', {Action = 'Assigned'})")
    proc.send({"Action": "Assigned"}, Target=ALICE)
    assert out(proc.eval("return tostring(assigned)")) == "1"


def test_json_module(proc):
    r = proc.eval("""return json.encode({b = 1, a = {true, false, 'x\\n"'}, c = 1.5, d = 2^53, e = {}})
      .. ' ' .. json.decode('{"a":[1,2.5,"\\\\u00e9\\\\ud83d\\\\ude00"],"n":null}').a[3]
      .. ' ' .. math.type(json.decode('123')) .. ' ' .. json.encode(json.object({}))
      .. ' ' .. json.encode({0.1, 1/3, -2.5e-300, 1e300})""")
    assert out(r) == '{"a":[true,false,"x\\n\\""],"b":1,"c":1.5,"d":9007199254740992,"e":[]} é😀 integer {} [0.1,0.3333333333333333,-2.5e-300,1e+300]'
    r = proc.eval("return json.decode('{\"a\": }')")
    assert "json:" in r.error and "column" in r.error


def test_bint(proc):
    r = proc.eval("""local a = bint('123456789012345678901234567890')
      local b = bint(987654321)
      return tostring(a + b), tostring(a - b), tostring(a * b), tostring(a // b), tostring(a % b),
        tostring(-a + 1), tostring(bint('0') - 5), tostring(a < b), tostring(bint.__le(b, a)),
        tostring(bint(2) ^ 100), tostring(bint('-7') // 2), tostring(bint('-7') % 2),
        tostring(bint('-7') - bint('-10')), tostring(bint(5) - bint(-3)), tostring(bint(3) - bint(3)),
        tostring(bint('10000000') - 1)""")
    a, b = 123456789012345678901234567890, 987654321
    assert out(r).split("\t") == [str(a + b), str(a - b), str(a * b), str(a // b), str(a % b), str(-a + 1), "-5",
                                  "false", "true", str(2 ** 100), str(-7 // 2), str(-7 % 2),
                                  "3", "8", "0", "9999999"]
    assert "not an integer" in proc.eval("return bint('12x')").error


def test_random_is_deterministic_and_seeded(runtime):
    code = "return math.random(1, 1000000), math.random(6), math.random() < 1"
    a = LuaProcess.spawn(runtime).eval(code)
    b = LuaProcess.spawn(runtime).eval(code)
    c = LuaProcess.spawn(runtime, owner=fake_id("other")).eval(code)
    assert out(a) == out(b) and out(a).endswith("true")
    assert out(a) != out(c)
    vals = [int(x) for x in out(a).split("\t")[:2]]
    assert 1 <= vals[0] <= 1000000 and 1 <= vals[1] <= 6


def test_os_functions_are_sandboxed(proc):
    assert out(proc.eval("return tostring(os.execute) .. tostring(os.getenv('HOME'))")) == "nilnil"
    assert proc.eval("os.exit(1)").error


def test_boot_from_process_data(runtime):
    p = LuaProcess.spawn(runtime, tags={"On-Boot": "Data"}, data="booted = 'yes'; print('boot ran')")
    assert p.boot.error is None and "boot ran" in p.boot.output["data"]
    assert out(p.eval("return booted")) == "yes"
    bad = LuaProcess.spawn(runtime, tags={"On-Boot": "Data"}, data="error('bad boot')")
    assert "bad boot" in bad.boot.error


def test_out_of_memory_is_clean(runtime):
    from aonet.vm.base import Limits
    p = LuaProcess.spawn(runtime, limits=Limits(memory=8 << 20))
    r = p.eval("local t = {} for i = 1, 1e7 do t[i] = string.rep('x', 100) .. i end")
    assert r.error is not None and "memory" in r.error
    assert out(p.eval("return 1")) == "1"


def test_malformed_message_fields(proc):
    # malformed fields are tolerated (Tags not a list, Data a number); the process keeps working
    res = proc.instance.handle({"Id": "x", "Tags": "not a list", "Data": 5}, proc.env)
    assert res.error is None
    assert out(proc.eval("return Inbox[#Inbox].Id .. ' ' .. Inbox[#Inbox].Data")) == "x 5"
    assert out(proc.eval("return 2")) == "2"


def test_outbox_json_is_valid_for_binary_strings(proc):
    r = proc.eval("return string.char(255, 0, 65)")
    assert out(r) == "\u00ff\u0000A"
    assert json.loads(json.dumps(r.output))


def test_stack_overflow_and_deep_json_are_clean_errors(proc):
    r = proc.eval("local function f(n) return 1 + f(n + 1) end return f(1)")
    assert "stack overflow" in r.error
    r = proc.eval("return json.decode(string.rep('[', 100000))")
    assert "nested too deep" in r.error
    assert out(proc.eval("return 3")) == "3"


def test_endless_loop_runs_out_of_compute(runtime):
    from aonet.vm.base import Limits
    p = LuaProcess.spawn(runtime, limits=Limits(compute=2_000_000_000))
    p.eval("kept = 'yes'")
    r = p.eval("while true do end")
    assert r.error and "Compute-Limit" in r.error
    assert out(p.eval("return kept")) == "yes"


def test_bint_matches_python_integers(proc):
    import random
    rng = random.Random(7)
    pairs = []
    for _ in range(150):
        a = rng.randrange(-10 ** rng.randrange(1, 60), 10 ** rng.randrange(1, 60))
        b = rng.randrange(1, 10 ** rng.randrange(1, 40)) * rng.choice((1, -1))
        pairs.append((a, b))
    lua_pairs = ",".join(f"{{'{a}','{b}'}}" for a, b in pairs)
    code = f"""local out = {{}}
      for _, p in ipairs({{{lua_pairs}}}) do
        local a, b = bint(p[1]), bint(p[2])
        out[#out+1] = table.concat({{tostring(a + b), tostring(a - b), tostring(a * b), tostring(a // b),
          tostring(a % b), tostring(a < b), tostring(a == bint(p[1]))}}, ' ')
      end
      return table.concat(out, ';')"""
    got = out(proc.eval(code)).split(";")
    want = [" ".join([str(a + b), str(a - b), str(a * b), str(a // b), str(a % b), str(a < b).lower(), "true"])
            for a, b in pairs]
    assert got == want


def test_spawn_with_one_table_uses_own_module(proc):
    (s,) = proc.eval("Spawn({Data = 'code', ['On-Boot'] = 'Data'})").spawns
    t = tags_of(s)
    assert t["Module"] == proc.module_id and t["On-Boot"] == "Data" and s["Data"] == "code"
    assert [x["name"] for x in s["Tags"]].count("Module") == 1
