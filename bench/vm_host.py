"""Per-message cost of WasmInstance.handle, split into the module's own work and the host's overhead.

    .venv/bin/python bench/vm_host.py [ledger lua python] [--runs 5]

For the C token ledger (tests/modules/ledger.c), the Lua token blueprint and the Python token
blueprint, on a warm instance: CPU and wall-clock µs per Transfer (best and median of --runs), then a
second pass that times the five ABI calls (malloc, malloc, handle, free, free) to show how much of a
message is spent inside wasm and how much around it (encoding, memory access, decoding, checkpoints).
CPU time is the figure to compare on a busy machine. Prints figures; asserts nothing about time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from aonet.vm import Limits  # noqa: E402
from aonet.vm.wasm import WasmRuntime  # noqa: E402

N = {"ledger": 10_000, "lua": 3_000, "python": 2_000}


def ledger(n: int):
    from aonet.vm.build import build_c_module
    owner = "owner-address-" + "x" * 29
    env = {"Process": {"Id": "process-id-" + "p" * 32, "Owner": owner, "Tags": [{"name": "Name", "value": "bench"}]}}

    def message(i: int, action: str, **tags: str) -> dict:
        return {"Id": f"msg-{i:040d}", "From": owner, "Owner": owner, "Target": env["Process"]["Id"],
                "Timestamp": 1_700_000_000_000 + i, "Block-Height": 1_000_000 + i // 100,
                "Tags": [{"name": "Action", "value": action}] + [{"name": k, "value": v} for k, v in tags.items()],
                "Data": ""}
    inst = WasmRuntime().instantiate(build_c_module(ROOT / "tests/modules/ledger.c"),
                                     Limits(memory=256 << 20, compute=10_000_000_000))
    inst.handle(message(0, "Mint", Quantity="1000000000"), env)
    msgs = [message(i, "Transfer", Recipient=f"user-{i % 1000:04d}", Quantity="1") for i in range(n)]
    for m in msgs[:2000]:                     # warm up (grows the table to 1000 accounts)
        inst.handle(m, env)
    return inst, msgs, env


def lua(n: int):
    from aonet.vm.lua import LuaProcess, blueprint
    from aonet.vm.lua.harness import fake_id
    proc = LuaProcess.spawn(WasmRuntime(), tags={"On-Boot": "Data"}, data=blueprint("token"))
    assert proc.boot.error is None, proc.boot.error
    assert proc.send({"Action": "Mint", "Quantity": "1" + "0" * 30}).error is None
    recipients = [fake_id("recipient", i) for i in range(100)]
    msgs = [proc.message({"Action": "Transfer", "Recipient": recipients[i % 100], "Quantity": "1"})
            for i in range(n + 200)]
    for m in msgs[:200]:
        proc.instance.handle(m, proc.env)
    return proc.instance, msgs[200:], proc.env


def python(n: int):
    import token_cases as tc
    from aonet.vm.python import PythonRuntime
    inst, env = PythonRuntime().instantiate(), tc.env()
    boot = {"Id": tc.PROCESS_ID, "From": tc.OWNER, "Owner": tc.OWNER, "Target": tc.PROCESS_ID,
            "Data": "from ao.blueprints import token\n", "Timestamp": 1_700_000_000_000, "Block-Height": 1000,
            "Tags": [{"name": "Type", "value": "Process"}, {"name": "Module", "value": "M" * 43}]}
    assert inst.handle(boot, env).error is None
    msgs = [tc.msg(tc.PROCESS_ID, "Transfer", Recipient=f"acct{i % 100:039d}", Quantity="1") for i in range(n + 200)]
    for m in msgs[:200]:
        inst.handle(m, env)
    return inst, msgs[200:], env


def timed_abi_calls(inst, acc: list[int]) -> None:
    """Wrap the instance's five ABI entry points so that their time adds up in acc[0] (ns)."""
    def wrap(f):
        clock = time.perf_counter_ns

        def timed(*args):
            t = clock()
            try:
                return f(*args)
            finally:
                acc[0] += clock() - t
        return timed
    inst._malloc, inst._free, inst._handle = wrap(inst._malloc), wrap(inst._free), wrap(inst._handle)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("which", nargs="*", help=f"any of {', '.join(N)} (default: all)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if bad := set(args.which) - set(N):
        ap.error(f"unknown workload(s) {', '.join(sorted(bad))}; choose from {', '.join(N)}")
    args.which = args.which or list(N)
    for name in args.which:
        n = N[name]
        inst, msgs, env = globals()[name](n)
        cpu, wall = [], []
        for _ in range(args.runs):
            c0, t0 = time.process_time(), time.perf_counter()
            for m in msgs:
                r = inst.handle(m, env)
            cpu.append((time.process_time() - c0) / n * 1e6)
            wall.append((time.perf_counter() - t0) / n * 1e6)
            assert r.error is None, r.error
        acc = [0]
        timed_abi_calls(inst, acc)
        t0 = time.perf_counter_ns()
        for m in msgs:
            inst.handle(m, env)
        total = (time.perf_counter_ns() - t0) / n / 1e3
        inside = acc[0] / n / 1e3
        print(f"{name:6s}: CPU {min(cpu):6.1f} µs/msg best, {statistics.median(cpu):6.1f} median; "
              f"wall {min(wall):6.1f} best, {statistics.median(wall):6.1f} median ({args.runs} x {n}); "
              f"timed pass: {inside:.1f} µs in the 5 ABI calls, {total - inside:.1f} µs around them; "
              f"checkpoints {inst.stats['checkpoints']}")


if __name__ == "__main__":
    main()
