"""The MU's pure crank (tag rewriting per PROTOCOL.md §2) and its durable SQLite queue."""
from __future__ import annotations

import time

from aonet.mu import crank
from aonet.mu.crank import Context, OutboxError, PushAssignment, PushMessage, PushSpawn, plan_result
from aonet.mu.queue import NewTask, TaskQueue
from aonet.mu.worker import plan_to_task

P, M, S, ROOT = "P" * 43, "M" * 43, "S" * 43, "R" * 43
CTX = Context(P, M, S, "src", ROOT)


def test_message_tags_rewritten_exactly():
    res = {"Messages": [{"Target": "T" * 43, "Data": "hi", "Anchor": "0" * 31 + "7", "Tags": [
        {"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
        {"name": "Type", "value": "Message"}, {"name": "From-Process", "value": "forged"},
        {"name": "From-Module", "value": "forged"}, {"name": "Action", "value": "Ping"},
        {"name": "Ref_", "value": "7"}]}]}
    [plan] = plan_result(res, CTX)
    assert isinstance(plan, PushMessage)
    assert plan.tags == [("Variant", "ao.TN.1"), ("Action", "Ping"), ("Ref_", "7"), ("Data-Protocol", "ao"),
                         ("Type", "Message"), ("From-Process", P), ("From-Module", M), ("Pushed-For", ROOT)]
    assert plan.target == "T" * 43 and plan.data == b"hi" and plan.anchor == "0" * 31 + "7"
    assert plan.key == "src:m0"


def test_message_defaults_and_assignments_tag():
    res = {"Messages": [{"Target": "T" * 43, "Tags": [{"name": "Assignments", "value": "A1,A2"}]}]}
    [plan] = plan_result(res, Context(P, M, S, "src", None))
    assert plan.data == b" " and plan.anchor is None and plan.assign_to == ("A1", "A2")
    assert ("Assignments", "A1,A2") not in plan.tags and ("Pushed-For", ROOT) not in plan.tags
    assert plan.tags[-1] == ("From-Module", M)


def test_non_string_tag_value_is_an_error_not_a_skip():
    res = {"Messages": [{"Target": "T" * 43, "Tags": [{"name": "Amount", "value": 5}]},
                        {"Tags": []}, {"Target": "T" * 43, "Anchor": "short", "Tags": []}, "junk"]}
    plans = plan_result(res, CTX)
    assert all(isinstance(p, OutboxError) for p in plans)
    assert "non-string" in plans[0].reason and "no Target" in plans[1].reason
    assert "32 bytes" in plans[2].reason and "not an object" in plans[3].reason
    tasks = [plan_to_task(p, ROOT, ROOT) for p in plans]
    assert all(t.state == "failed" and t.error for t in tasks)


def test_spawn_tags_and_notice():
    own = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Type", "value": "Process"},
           {"name": "Module", "value": "K" * 43}, {"name": "From-Process", "value": P},
           {"name": "Reference", "value": "3"}, {"name": "Name", "value": "kid"}]
    [plan] = plan_result({"Spawns": [{"Data": "boot", "Tags": own}]}, CTX)
    assert isinstance(plan, PushSpawn)
    assert plan.tags == [("Module", "K" * 43), ("Reference", "3"), ("Name", "kid"), ("Variant", "ao.TN.1"),
                         ("Data-Protocol", "ao"), ("Type", "Process"), ("From-Process", P), ("From-Module", M),
                         ("Pushed-For", ROOT), ("Scheduler", S)]
    notice = crank.spawned_notice_tags(plan.notice_tags, "N" * 43)
    assert notice == [("Module", "K" * 43), ("From-Process", P), ("Reference", "3"), ("Name", "kid"),
                      ("Data-Protocol", "ao"), ("Type", "Message"), ("Process", "N" * 43), ("Action", "Spawned"),
                      ("Variant", "ao.TN.1")]
    # an explicit Scheduler is kept; a spawn without Module is an error
    [p2, p3] = plan_result({"Spawns": [{"Tags": [{"name": "Module", "value": "K"}, {"name": "Scheduler", "value": "X"}]},
                                       {"Tags": []}]}, CTX)
    assert [t for t in p2.tags if t[0] == "Scheduler"] == [("Scheduler", "X")]
    assert isinstance(p3, OutboxError) and "Module" in p3.reason


def test_assignments_one_per_process():
    plans = plan_result({"Assignments": [{"Processes": ["A", "B"], "Message": "X" * 43},
                                         {"Processes": "A", "Message": "X"}]}, CTX)
    assert [(p.process, p.message, p.key) for p in plans[:2]] == [("A", "X" * 43, "src:a0.0"), ("B", "X" * 43, "src:a0.1")]
    assert isinstance(plans[0], PushAssignment) and isinstance(plans[2], OutboxError)


def test_bad_result_shapes():
    assert isinstance(plan_result("nope", CTX)[0], OutboxError)
    assert isinstance(plan_result({"Messages": "x"}, CTX)[0], OutboxError)
    assert plan_result({"Output": "x", "Messages": None}, CTX) == []


def test_queue_exactly_once_and_atomic_children(tmp_path):
    q = TaskQueue(tmp_path / "q.sqlite", retry_base=0.01)
    root = NewTask("result:a", "result", {"message": "a"}, target="P", root="a", item_id="a")
    assert q.add([root]) == 1 and q.add([root]) == 0          # same key: enqueued once
    [t] = q.ready()
    kids = [NewTask("a:m0", "message", {"n": 0}, target="X", root="a"),
            NewTask("a:m1", "message", {"n": 1}, target="Y", root="a")]
    assert q.complete(t.key, kids) == 2
    assert q.complete(t.key, kids) == 0                          # replay after a crash: nothing new
    assert [x.key for x in q.ready()] == ["a:m0", "a:m1"]
    q.save_stage("a:m0", "signed", item=b"\x01\x02", item_id="ID0")
    q.close()
    q = TaskQueue(tmp_path / "q.sqlite", retry_base=0.01)        # restart: state survives
    t0 = q.get("a:m0")
    assert t0.stage == "signed" and t0.item == b"\x01\x02" and t0.item_id == "ID0" and t0.state == "pending"
    assert [x.key for x in q.trace("a")] == ["result:a", "a:m0", "a:m1"]
    assert [x.key for x in q.trace("ID0")] == ["a:m0"]


def test_queue_retry_backoff_and_give_up(tmp_path):
    q = TaskQueue(tmp_path / "q.sqlite", retry_base=0.05, max_retries=2)
    q.add([NewTask("k", "message", {}, target="T")])
    assert q.fail("k", "boom") is True
    assert q.ready() == []                                       # backing off
    time.sleep(0.06)
    assert [t.key for t in q.ready()] == ["k"]
    assert q.fail("k", "boom") is True
    assert q.fail("k", "boom again") is False                    # over max_retries
    t = q.get("k")
    assert t.state == "failed" and t.error == "boom again" and t.attempts == 3
    assert q.ready(now=time.time() + 100) == []


def test_queue_monitors_persist(tmp_path):
    q = TaskQueue(tmp_path / "q.sqlite")
    assert q.add_monitor("P", None) and not q.add_monitor("P", "c")
    q.add([NewTask("cron:P:c1:m0", "message", {}, target="X")], monitor_cursor=("P", "c1"))
    q.close()
    q = TaskQueue(tmp_path / "q.sqlite")
    assert q.monitors() == {"P": "c1"}
    assert q.remove_monitor("P") and q.monitors() == {}


def test_queue_ready_skips_in_flight_keys_and_busy_targets(tmp_path):
    q = TaskQueue(tmp_path / "q.sqlite")
    q.add([NewTask(f"x{i}", "message", {"n": i}, target="X") for i in range(3)]
          + [NewTask("y0", "message", {}, target="Y"), NewTask("free", "result", {})])
    assert [t.key for t in q.ready()] == ["x0", "x1", "x2", "y0", "free"]
    assert [t.key for t in q.ready(skip=["x0", "free"])] == ["x1", "x2", "y0"]
    assert [t.key for t in q.ready(skip_targets=["X"])] == ["y0", "free"]
    assert [t.key for t in q.ready(skip_targets=["X", "free"], limit=5)] == ["y0"]   # no target: its key
    assert [t.key for t in q.ready(skip=["x0"], skip_targets=["Y"], limit=2)] == ["x1", "x2"]
    q.close()
