"""aonet.vm.wasm: the JSON ABI runtime — semantics, rollback, limits, snapshots, determinism."""
from __future__ import annotations

import pytest

from aonet.vm import LimitError, Limits, VMError
from aonet.vm.wasm import WasmRuntime, memory_hash
from vm_fixtures import ENV, OWNER, msg, tag

LIMITS = Limits(memory=64 << 20, compute=200_000_000)


def count(inst) -> int:
    r = inst.handle(msg("Get"), ENV)
    assert r.error is None, r.error
    return r.output["count"]


# -- semantics ----------------------------------------------------------------------------------
def test_counter_counts_and_reports_gas(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["counter"], LIMITS)
    assert inst.handle(msg("Increment"), ENV).output == {"count": 1}
    r = inst.handle(msg("Increment", By=41), ENV)
    assert r.output == {"count": 42} and r.error is None and r.messages == []
    assert r.gas_used > 0
    assert r.to_json()["GasUsed"] == r.gas_used
    assert inst.handle(msg("Increment", By="x"), ENV).error == "By must be a non-negative integer"
    assert count(inst) == 42


def test_ledger_mint_transfer_balance(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["ledger"], LIMITS)
    assert inst.handle(msg("Mint", Quantity=1000), ENV).output == "minted"
    r = inst.handle(msg("Transfer", Recipient="bob", Quantity=300), ENV)
    assert r.error is None and r.output == "transferred"
    debit, credit = r.messages
    assert debit["Target"] == OWNER and tag(debit, "Action") == "Debit-Notice"
    assert tag(debit, "Recipient") == "bob" and tag(debit, "Quantity") == "300"
    assert credit["Target"] == "bob" and tag(credit, "Action") == "Credit-Notice"
    assert tag(credit, "Sender") == OWNER and tag(credit, "Quantity") == "300"

    r = inst.handle(msg("Balance", Target="bob"), ENV)
    assert r.output == {"Account": "bob", "Balance": "300"}
    assert r.messages[0]["Target"] == OWNER and tag(r.messages[0], "Balance") == "300"
    assert r.messages[0]["Data"] == "300"
    assert inst.handle(msg("Balance"), ENV).output == {"Account": OWNER, "Balance": "700"}

    # bob cannot send more than he has: a Transfer-Error message, not a failed message
    r = inst.handle(msg("Transfer", frm="bob", Recipient="carol", Quantity=301), ENV)
    assert r.error is None and [tag(m, "Action") for m in r.messages] == ["Transfer-Error"]
    assert r.messages[0]["Target"] == "bob"
    assert inst.handle(msg("Transfer", frm="bob", Recipient="carol", Quantity=100), ENV).error is None
    assert inst.handle(msg("Balances"), ENV).output == {OWNER: "700", "bob": "200", "carol": "100"}


def test_ledger_errors_leave_balances_alone(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["ledger"], LIMITS)
    inst.handle(msg("Mint", Quantity=10), ENV)
    before = inst.memory_hash()
    r = inst.handle(msg("Mint", frm="mallory", Quantity=10**6), ENV)
    assert r.error == "only the process owner may mint" and r.messages == []
    r = inst.handle(msg("Transfer", Recipient="bob", Quantity="-5"), ENV)
    assert r.error == "Quantity must be a positive integer"
    assert inst.memory_hash() == before
    assert inst.handle(msg("Balances"), ENV).output == {OWNER: "10"}


def test_outbox_messages_spawns_assignments(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["outbox"], LIMITS)
    r = inst.handle(msg("All", data="payload", To="target-1", Module="module-1", Message="m-1", P1="pa", P2="pb"), ENV)
    assert r.error is None and r.output == "All"
    assert r.messages == [{"Target": "target-1", "Data": "payload", "Anchor": "0" * 31 + "1",
                           "Tags": [{"name": "Action", "value": "Ping"}]}]
    assert r.spawns == [{"Data": "child", "Tags": [{"name": "Module", "value": "module-1"},
                                                    {"name": "Name", "value": "kid"}]}]
    assert r.assignments == [{"Processes": ["pa", "pb"], "Message": "m-1"}]
    only = inst.handle(msg("Spawn", Module="m2"), ENV)
    assert only.messages == [] and only.assignments == [] and len(only.spawns) == 1
    j = r.to_json()
    assert set(j) == {"Output", "Messages", "Spawns", "Assignments", "GasUsed"}


def test_unicode_round_trips(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["outbox"], LIMITS)
    text = 'héllo "wörld" \\ ✓ 😀 \n\t'
    r = inst.handle(msg("Send", data=text, To="t"), ENV)
    assert r.messages[0]["Data"] == text


# -- failures leave the state exactly as it was ---------------------------------------------------
FAILURES = {
    "Fail": "asked to fail",                    # a Result with Error (the module's outbox is dropped)
    "Trap": "wasm trap: wasm `unreachable`",    # a trap
    "Loop": "Compute-Limit exceeded",           # fuel runs out
    "Exit": "proc_exit(7)",                     # proc_exit
    "Bomb": "out of memory after",              # malloc fails at the Memory-Limit
    "BadJSON": "module returned invalid JSON",
}


@pytest.mark.parametrize("action", FAILURES)
def test_failed_message_rolls_back_and_instance_stays_usable(runtime, wasm_modules, action):
    inst = runtime.instantiate(wasm_modules["counter"], Limits(memory=16 << 20, compute=200_000_000))
    for _ in range(3):
        inst.handle(msg("Increment"), ENV)
    size, before = inst.memory_size(), inst.memory_hash()
    r = inst.handle(msg(action), ENV)
    assert FAILURES[action] in str(r.error)
    assert r.messages == [] and r.spawns == [] and r.assignments == []
    assert r.gas_used > 0
    assert inst.memory_size() == size and inst.memory_hash() == before
    assert count(inst) == 3
    assert inst.handle(msg("Increment"), ENV).output == {"count": 4}
    assert inst.handle(msg(action), ENV).error is not None     # fails the same way again
    assert count(inst) == 4


def test_out_of_fuel_uses_exactly_the_limit(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["counter"], Limits(compute=1_000_000))
    r = inst.handle(msg("Loop"), ENV)
    assert r.gas_used == 1_000_000 and "out of fuel" in r.error
    ok = inst.handle(msg("Increment"), ENV)
    assert ok.error is None and 0 < ok.gas_used < 1_000_000


def test_memory_limit_bounds_growth(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["counter"], Limits(memory=8 << 20, compute=10**10))
    r = inst.handle(msg("Bomb"), ENV)
    mib = int(r.error.split("after ")[1].split()[0])
    assert 0 < mib < 8
    assert inst.memory_size() <= 8 << 20
    bigger = runtime.instantiate(wasm_modules["counter"], Limits(memory=32 << 20, compute=10**10))
    assert int(bigger.handle(msg("Bomb"), ENV).error.split("after ")[1].split()[0]) > mib


@pytest.mark.parametrize("name, error", [("trap", "unreachable"), ("loop", "Compute-Limit exceeded"),
                                         ("bomb", "Memory-Limit of 1048576")])
def test_wat_failure_modules(runtime, wasm_modules, name, error):
    inst = runtime.instantiate(wasm_modules[name], Limits(memory=1 << 20, compute=5_000_000))
    before = inst.snapshot()
    for _ in range(2):
        r = inst.handle({"Id": "1"}, {})
        assert error in r.error
        assert inst.snapshot() == before           # the bomb's counter and growth are undone


def test_failure_after_many_messages_replays_the_log(wasm_modules):
    rt = WasmRuntime(checkpoint_ratio=1e9)         # never checkpoint on its own: the log keeps growing
    inst = rt.instantiate(wasm_modules["counter"], LIMITS)
    for i in range(50):
        inst.handle(msg("Increment", i), ENV)
    before = inst.memory_hash()
    assert inst.handle(msg("Trap"), ENV).error
    assert inst.stats["replayed"] == 50
    assert inst.memory_hash() == before and count(inst) == 50
    assert inst.handle(msg("Fail"), ENV).error      # log now holds only the Get: replays in place
    assert count(inst) == 50


def test_checkpoint_every_message(wasm_modules):
    rt = WasmRuntime(checkpoint_ratio=0)
    inst = rt.instantiate(wasm_modules["counter"], LIMITS)
    for _ in range(5):
        inst.handle(msg("Increment"), ENV)
    inst.handle(msg("Trap"), ENV)
    assert inst.stats["replayed"] == 0 and count(inst) == 5
    # the runtime's own checkpoints live in a reusable buffer; snapshot() still hands out bytes
    image = inst.snapshot()
    assert type(image) is bytes and memory_hash(image) == inst.memory_hash() and inst.snapshot() is image
    inst.handle(msg("Increment"), ENV)
    assert rt.instantiate(wasm_modules["counter"], LIMITS, image=image).handle(msg("Get"), ENV).output == {"count": 5}
    assert count(inst) == 6


def test_unserializable_message_is_an_error_not_a_crash(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["counter"], LIMITS)
    inst.handle(msg("Increment"), ENV)
    before = inst.memory_hash()
    r = inst.handle({"Tags": [], "x": object()}, ENV)
    assert "not JSON-serializable" in r.error
    r = inst.handle({"x": float("nan")}, ENV)
    assert r.error and inst.memory_hash() == before and count(inst) == 1


def test_failed_encoding_leaves_the_encoder_clean(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["counter"], LIMITS)
    loop: dict = {"Tags": []}
    loop["self"] = loop
    assert "not JSON-serializable" in inst.handle(loop, ENV).error           # circular
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert "not JSON-serializable" in inst.handle({"Tags": [], "Data": deep}, ENV).error   # too deep
    m = msg("Increment")
    m["x"] = object()
    assert "not JSON-serializable" in inst.handle(m, ENV).error
    del m["x"]                          # the same dict, now fine: no stale circular-check marker for it
    assert inst.handle(m, ENV).output == {"count": 1}
    shared = {"name": "Note", "value": "same object twice is not a cycle"}
    m = msg("Increment")
    m["Tags"] += [shared, shared]
    assert inst.handle(m, ENV).output == {"count": 2}


def test_memory_growth_during_a_message(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["outbox"], LIMITS)
    size = inst.memory_size()
    r = inst.handle(msg("Send", data="héllo", To="t", Pad="x" * size), ENV)    # malloc grows memory
    assert r.error is None and r.messages[0]["Data"] == "héllo"
    assert inst.memory_size() > size
    r = inst.handle(msg("Send", data="small", To="t"), ENV)
    assert r.messages[0]["Data"] == "small"


def test_answer_too_deep_for_json_is_an_error(runtime):
    deep = "[" * 30_000 + "]" * 30_000                     # fits the one page of memory
    wat = (f'(module {_ABI} (data (i32.const 1024) "{deep}\\00") '
           '(func (export "handle") (param i32 i32) (result i32) (i32.const 1024)))')
    inst = runtime.instantiate(wat.encode(), LIMITS)
    r = inst.handle({}, {})
    assert "module returned invalid JSON" in r.error and "recursion" in r.error


# -- snapshots and determinism ------------------------------------------------------------------
def test_snapshot_restore_continues_in_a_fresh_instance(runtime, wasm_modules):
    a = runtime.instantiate(wasm_modules["ledger"], LIMITS)
    a.handle(msg("Mint", Quantity=500), ENV)
    a.handle(msg("Transfer", 1, Recipient="bob", Quantity=5), ENV)
    image = a.snapshot()
    assert len(image) == a.memory_size() and len(image) % 65536 == 0
    assert memory_hash(image) == a.memory_hash()

    b = runtime.instantiate(wasm_modules["ledger"], LIMITS, image=image)
    assert b.snapshot() == image
    for inst in (a, b):
        r = inst.handle(msg("Transfer", 2, Recipient="carol", Quantity=7), ENV)
        assert r.error is None and len(r.messages) == 2
    assert a.memory_hash() == b.memory_hash()
    assert b.handle(msg("Balances"), ENV).output == {OWNER: "488", "bob": "5", "carol": "7"}

    a.restore(image)                                   # back in time, same instance object
    assert a.handle(msg("Balances"), ENV).output == {OWNER: "495", "bob": "5"}


def test_restore_rejects_images_that_do_not_fit(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["counter"], LIMITS)
    with pytest.raises(VMError, match="64 KiB pages"):
        inst.restore(b"\0" * 1000)
    with pytest.raises(VMError, match="at least"):
        inst.restore(b"\0" * 65536)
    with pytest.raises(LimitError):
        runtime.instantiate(wasm_modules["counter"], Limits(memory=4 << 20), image=b"\0" * (8 << 20))
    inst.handle(msg("Increment"), ENV)
    assert count(inst) == 1                            # a refused restore changed nothing


def test_two_instances_compute_identical_bytes_and_gas(runtime, wasm_modules):
    msgs = [msg("Mint", 0, Quantity=10**9)] + [
        msg("Transfer", i, Recipient=f"user-{i % 37}", Quantity=i + 1, ts=1_700_000_000_000 + i) for i in range(300)]
    a = runtime.instantiate(wasm_modules["ledger"], LIMITS)
    b = WasmRuntime(checkpoint_ratio=0).instantiate(wasm_modules["ledger"], LIMITS)  # different engine & policy
    gas_a = [a.handle(m, ENV).gas_used for m in msgs]
    gas_b = [b.handle(m, ENV).gas_used for m in msgs]
    assert gas_a == gas_b
    assert a.memory_hash() == b.memory_hash()
    assert a.snapshot() == b.snapshot()


# -- wasm64, setjmp/longjmp ---------------------------------------------------------------------
def test_wasm64_module(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["counter64"], LIMITS, format="wasm64-wasi-ao1")
    assert inst.compiled.ptr64 and inst.compiled.format == "wasm64-wasi-ao1"
    inst.handle(msg("Increment"), ENV)
    assert inst.handle(msg("Increment"), ENV).output["count"] == 2
    assert inst.handle(msg("Time", ts=1234), ENV).output == {"ns": 1234 * 10**6}
    assert inst.handle(msg("Print"), ENV).output == {"written": 7}      # 16-byte iovecs
    assert inst.stdout == b"wasm64\n"
    image = inst.snapshot()
    again = runtime.instantiate(wasm_modules["counter64"], LIMITS, image=image)
    assert again.handle(msg("Get"), ENV).output["count"] == 2
    with pytest.raises(VMError, match="64-bit"):
        runtime.instantiate(wasm_modules["counter64"], LIMITS, format="wasm32-wasi-ao1")
    with pytest.raises(VMError, match="unknown module format"):
        runtime.instantiate(wasm_modules["counter"], LIMITS, format="wasm32-unknown-emscripten2")


def test_setjmp_longjmp_through_wasm_exceptions(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["sjlj"], LIMITS)
    assert inst.handle(msg("Throw"), ENV).output == {"caught": 1}
    assert inst.handle(msg("Throw"), ENV).output == {"caught": 2}
    assert inst.handle(msg("Get"), ENV).output == {"caught": 2}


# -- bad modules ----------------------------------------------------------------------------------
_ABI = '''(memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 64))
  (func (export "free") (param i32))'''


def test_bad_module_bytes(runtime):
    with pytest.raises(VMError, match="invalid wasm module"):
        runtime.instantiate(b"\0asm\x01\0\0\0garbage", LIMITS)
    with pytest.raises(VMError, match="neither a wasm binary"):
        runtime.instantiate(b"\xff\xfe not wasm", LIMITS)
    with pytest.raises(VMError, match="module must be bytes"):
        runtime.instantiate("(module)", LIMITS)


@pytest.mark.parametrize("wat, error", [
    ('(module (func (export "handle") (param i32 i32) (result i32) (i32.const 0)))', "does not export 'memory'"),
    (f'(module {_ABI})', "does not export 'handle'"),
    ('(module (memory (export "memory") 1) (func (export "handle") (param i32 i32) (result i32) (i32.const 0)))',
     "does not export 'malloc'"),
    (f'(module {_ABI} (func (export "handle") (param i32) (result i32) (i32.const 0)))', "'handle' must have signature"),
    (f'(module (import "env" "f" (func)) {_ABI} (func (export "handle") (param i32 i32) (result i32) (i32.const 0)))',
     "unsupported import env.f"),
    (f'(module {_ABI} (func (export "_initialize") (param i32)) '
     '(func (export "handle") (param i32 i32) (result i32) (i32.const 0)))', "'_initialize'"),
])
def test_abi_violations_are_clear_vm_errors(runtime, wat, error):
    with pytest.raises(VMError, match=error):
        runtime.instantiate(wat.encode(), LIMITS)


def test_initial_memory_over_the_limit(runtime):
    wat = f'(module {_ABI.replace("1)", "64)", 1)} (func (export "handle") (param i32 i32) (result i32) (i32.const 0)))'
    with pytest.raises(LimitError, match="Memory-Limit"):
        runtime.instantiate(wat.encode(), Limits(memory=1 << 20))


def test_initialize_trap_is_a_vm_error(runtime):
    wat = f'(module {_ABI} (func (export "_initialize") unreachable) ' \
          '(func (export "handle") (param i32 i32) (result i32) (i32.const 0)))'
    with pytest.raises(VMError, match="_initialize failed: wasm trap"):
        runtime.instantiate(wat.encode(), LIMITS)


def test_result_pointer_and_shape_checks(runtime):
    def module(body: str, data: str = "") -> bytes:
        return (f'(module {_ABI} (data (i32.const 16) "{data}") '
                f'(func (export "handle") (param i32 i32) (result i32) {body}))').encode()
    inst = runtime.instantiate(module("(i32.const 70000)"), LIMITS)
    assert "no NUL-terminated string" in inst.handle({}, {}).error
    inst = runtime.instantiate(module("(i32.const 0)"), LIMITS)
    assert "returned NULL" in inst.handle({}, {}).error
    inst = runtime.instantiate(module("(i32.const 16)", '[1,2]\\00'), LIMITS)
    assert "not an object" in inst.handle({}, {}).error
    inst = runtime.instantiate(module("(i32.const 16)", '{\\"Messages\\":\\"x\\"}\\00'), LIMITS)
    assert "'Messages' must be a list of objects" in inst.handle({}, {}).error
    inst = runtime.instantiate(module("(i32.const 16)", '{}\\00'), LIMITS)
    r = inst.handle({}, {})
    assert r.error is None and r.output == "" and r.messages == []
    # the last byte of memory is not NUL: the string must still be found, and not be read past the end
    tail = f'{_ABI} (data (i32.const 65532) "{{}}  ") (data (i32.const 16) "{{\\"Output\\":7}}\\00")'
    inst = runtime.instantiate(f'(module {tail} (func (export "handle") (param i32 i32) (result i32) '
                               f'(i32.const 65532)))'.encode(), LIMITS)
    assert "no NUL-terminated string" in inst.handle({}, {}).error
    inst = runtime.instantiate(f'(module {tail} (func (export "handle") (param i32 i32) (result i32) '
                               f'(i32.const 16)))'.encode(), LIMITS)
    assert inst.handle({}, {}).output == 7


def test_unknown_wasi_function_answers_enosys(runtime):
    wat = f'''(module (import "wasi_snapshot_preview1" "sock_listen" (func $f (param i32 i32) (result i32)))
      {_ABI} (data (i32.const 100) "{{\\"Output\\":\\"enosys\\"}}\\00") (data (i32.const 200) "{{}}\\00")
      (func (export "handle") (param i32 i32) (result i32)
        (if (result i32) (i32.eq (call $f (i32.const 0) (i32.const 0)) (i32.const 52))
          (then (i32.const 100)) (else (i32.const 200)))))'''
    assert runtime.instantiate(wat.encode(), LIMITS).handle({}, {}).output == "enosys"


# -- module cache -------------------------------------------------------------------------------
def test_module_cache_in_memory_and_on_disk(tmp_path, wasm_modules):
    rt = WasmRuntime(cache_dir=tmp_path)
    first = rt.compile(wasm_modules["counter"])
    assert rt.compile(wasm_modules["counter"]) is first
    files = list(tmp_path.glob("*.cwasm"))
    assert [f.name.split(".")[0] for f in files] == [first.sha256]
    other = WasmRuntime(cache_dir=tmp_path)                   # a new engine loads the serialized module
    inst = other.instantiate(wasm_modules["counter"], LIMITS)
    assert inst.handle(msg("Increment"), ENV).output == {"count": 1}
    files[0].write_bytes(b"corrupt")                           # a bad cache file is recompiled, not fatal
    assert WasmRuntime(cache_dir=tmp_path).instantiate(wasm_modules["counter"], LIMITS).handle(
        msg("Get"), ENV).output == {"count": 0}


def test_dry_run_pattern_snapshot_handle_restore(runtime, wasm_modules):
    inst = runtime.instantiate(wasm_modules["ledger"], LIMITS)
    inst.handle(msg("Mint", Quantity=50), ENV)
    inst.handle(msg("Transfer", 1, Recipient="bob", Quantity=5), ENV)     # allocates bob's entry
    image = inst.snapshot()
    incarnations = inst.stats["incarnations"]
    assert inst.handle(msg("Transfer", 2, Recipient="bob", Quantity=5), ENV).error is None
    assert inst.memory_size() == len(image)
    inst.restore(image)                                # same size: written in place
    assert inst.stats["incarnations"] == incarnations
    assert inst.snapshot() == image
    assert inst.handle(msg("Balances"), ENV).output == {OWNER: "45", "bob": "5"}
    assert inst.handle(msg("Transfer", 3, Recipient="bob", Quantity=5), ENV).error is None
    assert inst.handle(msg("Balances"), ENV).output == {OWNER: "40", "bob": "10"}
