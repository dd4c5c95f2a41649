"""aonet.vm.wasi: what a module sees of the world comes from the message, and files are read only."""
from __future__ import annotations

import copy

import pytest

from aonet.vm import Limits, VMError
from aonet.vm.wasi import FileTree, RandomStream, random_seed
from aonet.vm.wasm import WasmRuntime
from vm_fixtures import ENV, msg

FILES = {"lib/a.txt": b"hello file", "lib/sub/b.py": b"print(1)\n", "top.txt": b"0123456789",
         "/lib/sub/c.bin": bytes(range(256)) * 300}


@pytest.fixture(scope="module")
def probe(wasm_modules):
    rt = WasmRuntime(files=FILES, environ=["PYTHONHASHSEED=0", "LANG=C"])
    return rt.instantiate(wasm_modules["probe"], Limits(memory=64 << 20, compute=10**9))


def out(inst, action, **kw) -> str:
    r = inst.handle(msg(action, **kw), ENV)
    assert r.error is None, r.error
    return r.output


def test_clocks_read_the_message_timestamp(probe):
    realtime, monotonic, seconds = map(int, out(probe, "Time", ts=1_700_000_000_123).split())
    assert realtime == monotonic == 1_700_000_000_123 * 10**6 and seconds == 1_700_000_000
    assert out(probe, "Time", ts=5).split()[0] == str(5 * 10**6)
    r = probe.handle({"Tags": [{"name": "Action", "value": "Time"}]}, ENV)     # no Timestamp: 0
    assert r.output.split()[0] == "0"


def test_random_is_seeded_from_the_message(probe, runtime, wasm_modules):
    first = out(probe, "Random")
    assert len(first) == 32 and out(probe, "Random") == first          # same message, same bytes
    other = runtime.instantiate(wasm_modules["probe"])
    assert out(other, "Random") == first                                # on any instance
    assert probe.handle(msg("Random", 2), ENV).output != first          # another message Id
    assert probe.handle(msg("Random"), {"Process": {"Id": "other"}}).output != first
    expected = RandomStream(random_seed(*_encoded(msg("Random"), ENV))).read(16).hex()
    assert first == expected                                            # the documented formula


def _encoded(m, e):
    from aonet.vm.wasm import _encode
    return _encode(m), _encode(e)


def test_env_changed_in_place_is_seen(probe):
    # The instance remembers the env's bytes for the same env object; a change inside it must still count.
    env = copy.deepcopy(ENV)
    first = out_env(probe, "Random", env)
    assert out_env(probe, "Random", env) == first
    env["Process"]["Id"] = "changed"
    assert out_env(probe, "Random", env) == RandomStream(random_seed(*_encoded(msg("Random"), env))).read(16).hex()
    assert out_env(probe, "Random", env) != first
    env["Process"]["Id"] = ENV["Process"]["Id"]
    assert out_env(probe, "Random", env) == first == out_env(probe, "Random", copy.deepcopy(ENV))


def out_env(inst, action, env) -> str:
    r = inst.handle(msg(action), env)
    assert r.error is None, r.error
    return r.output


def test_random_stream_is_a_sha256_counter():
    import hashlib
    s = RandomStream(b"seed")
    data = s.read(10) + s.read(50)
    want = b"".join(hashlib.sha256(b"seed" + i.to_bytes(8, "little")).digest() for i in range(2))
    assert data == want[:60]


def test_stdout_and_stderr_are_captured_per_message(probe, capfd):
    assert out(probe, "Print", data="hi") == "printed"
    assert probe.stdout == b"out:hi\nerr:hi\n"
    out(probe, "Time")
    assert probe.stdout == b""
    assert capfd.readouterr() == ("", "")                               # nothing reached the terminal


def test_environment_is_fixed(probe, runtime, wasm_modules):
    assert out(probe, "Env") == "PYTHONHASHSEED=0;LANG=C;"
    assert out(runtime.instantiate(wasm_modules["probe"]), "Env") == ""


def test_files_read_seek_list_stat(probe):
    assert out(probe, "Read", Path="/lib/a.txt") == "hello file"
    assert out(probe, "Read", Path="lib/sub/b.py") == "print(1)\n"
    assert out(probe, "Read", Path="/lib/sub/../a.txt") == "hello file"
    assert out(probe, "Seek", Path="/top.txt") == "6:6789"
    assert out(probe, "List", Path="/") == "./,../,lib/,top.txt,"
    assert out(probe, "List", Path="/lib/sub") == "./,../,b.py,c.bin,"
    assert out(probe, "Stat", Path="/lib/sub/c.bin") == "size=76800 dir=0 mtime=0"
    assert out(probe, "Stat", Path="/lib") == "size=0 dir=1 mtime=0"


def test_files_errors(probe):
    assert out(probe, "Read", Path="/nope.txt") == "errno:No such file or directory"
    assert out(probe, "Read", Path="/lib") == ""           # as on Linux: opening works, reading gives EISDIR
    assert out(probe, "List", Path="/top.txt") == "errno:Not a directory"
    assert out(probe, "Write", Path="/new.txt") == "errno:Read-only file system"
    assert out(probe, "Write", Path="/lib/a.txt") == "errno:Read-only file system"
    assert out(probe, "Read", Path="/../../etc/passwd").startswith("errno:")


def test_files_opened_in_a_message_do_not_outlive_it(probe):
    probe.host.fds.clear()                                              # even a messed-up table
    assert out(probe, "Read", Path="/lib/a.txt") == "hello file"        # is reset by the next message
    assert sorted(probe.host.fds) == [0, 1, 2, 3]


def test_proc_exit_traps(probe):
    r = probe.handle(msg("Exit"), ENV)
    assert r.error == "process called proc_exit(3)"
    assert out(probe, "Read", Path="/lib/a.txt") == "hello file"


def test_file_tree_validation():
    tree = FileTree({"a/b.txt": b"x", "/a/c.txt": b"yy"})
    assert tree.dirs == {"": ["a"], "a": ["b.txt", "c.txt"]}
    assert tree.inodes == {"": 1, "a": 2, "a/b.txt": 3, "a/c.txt": 4}
    for bad in ({"../x": b""}, {"a/../b": b""}, {"/": b""}):
        with pytest.raises(ValueError):
            FileTree(bad)
    with pytest.raises(ValueError, match="both a file and a directory"):
        FileTree({"a": b"", "a/b": b""})
    with pytest.raises(TypeError):
        FileTree({"a": "text"})
    with pytest.raises(VMError, match="bad file tree"):
        WasmRuntime(files={"../x": b""})


def test_wasi_calls_cost_fuel(runtime):
    wat = b'''(module (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
      (memory (export "memory") 2) (data (i32.const 16) "{}\\00")
      (func (export "malloc") (param i32) (result i32) (i32.const 64))
      (func (export "free") (param i32))
      (func (export "handle") (param i32 i32) (result i32)
        (drop (call $r (i32.const 1024) (i32.const 60000))) (i32.const 16)))'''
    ok = runtime.instantiate(wat, Limits(compute=1_000_000)).handle({"Id": "x"}, {})
    assert ok.error is None and ok.gas_used > 60_000
    starved = runtime.instantiate(wat, Limits(compute=30_000))
    r = starved.handle({"Id": "x"}, {})
    assert r.error.startswith("Compute-Limit exceeded") and "random_get" in r.error
    assert r.gas_used == 30_000
    image = starved.snapshot()
    assert image[1024:1040] == bytes(16)                  # the random bytes were rolled back
