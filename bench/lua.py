"""Token transfers per second on a warm Lua process (goal: >= 5,000/s, also with a snapshot every 100).

    .venv/bin/python bench/lua.py [--n 5000]

Prints: messages/s through WasmInstance.handle (msg/env JSON encode, the ABI calls, result decode,
the runtime's own rollback checkpoints), the same with snapshot() after every 100 messages, the gas
per transfer, and the snapshot size.
"""
from __future__ import annotations

import argparse
import time

from aonet.vm.lua import LuaProcess, blueprint, lua_module
from aonet.vm.lua.harness import fake_id
from aonet.vm.wasm import WasmRuntime


def run(n: int, snapshot_every: int | None) -> tuple[float, int, int]:
    proc = LuaProcess.spawn(WasmRuntime(), tags={"On-Boot": "Data"}, data=blueprint("token"))
    assert proc.boot.error is None, proc.boot.error
    assert proc.send({"Action": "Mint", "Quantity": "1" + "0" * 30}).error is None
    recipients = [fake_id("recipient", i) for i in range(100)]
    msgs = [proc.message({"Action": "Transfer", "Recipient": recipients[i % 100], "Quantity": "1"})
            for i in range(n + 200)]
    for m in msgs[:200]:                     # warm up
        proc.instance.handle(m, proc.env)
    gas = 0
    t0 = time.perf_counter()
    for i, m in enumerate(msgs[200:], 1):
        r = proc.instance.handle(m, proc.env)
        gas += r.gas_used
        if snapshot_every and i % snapshot_every == 0:
            proc.instance.snapshot()
    dt = time.perf_counter() - t0
    assert r.error is None and len(r.messages) == 2, r
    return n / dt, gas // n, len(proc.instance.snapshot())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration; the best is reported")
    args = ap.parse_args()
    lua_module()                              # build outside the timing
    for label, every in (("warm instance", None), ("snapshot every 100 msgs", 100)):
        runs = [run(args.n, every) for _ in range(args.repeat)]
        rate, gas, size = max(runs)
        all_rates = ", ".join(f"{r[0]:.0f}" for r in runs)
        print(f"token transfers, {label:24s} {rate:7.0f} msg/s  ({1e6 / rate:.0f} us/msg; {gas} gas/msg; "
              f"snapshot {size / 2**20:.1f} MiB; runs: {all_rates})")


if __name__ == "__main__":
    main()
