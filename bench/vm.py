"""Benchmark of aonet.vm.wasm: warm messages/s for the token-ledger module, and snapshot / restore.

Run: .venv/bin/python bench/vm.py [--messages N]
Prints figures; asserts nothing about time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aonet.vm import Limits  # noqa: E402
from aonet.vm.build import build_c_module  # noqa: E402
from aonet.vm.wasm import WasmRuntime, memory_hash  # noqa: E402

OWNER = "owner-address-" + "x" * 29
ENV = {"Process": {"Id": "process-id-" + "p" * 32, "Owner": OWNER, "Tags": [{"name": "Name", "value": "bench"}]}}


def message(i: int, action: str, **tags: str) -> dict:
    return {"Id": f"msg-{i:040d}", "From": OWNER, "Owner": OWNER, "Target": ENV["Process"]["Id"],
            "Timestamp": 1_700_000_000_000 + i, "Block-Height": 1_000_000 + i // 100,
            "Tags": [{"name": "Action", "value": action}] + [{"name": k, "value": v} for k, v in tags.items()],
            "Data": ""}


CPU: list[float] = []


def rate(inst, msgs) -> float:
    """Messages per wall-clock second; also records messages per CPU second (robust on a busy host)."""
    t0, c0 = time.perf_counter(), time.process_time()
    for m in msgs:
        inst.handle(m, ENV)
    CPU.append(len(msgs) / max(time.process_time() - c0, 1e-9))
    return len(msgs) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    ledger = build_c_module(ROOT / "tests/modules/ledger.c")
    print(f"build (cached after the first run): {time.perf_counter() - t0:.2f} s, {len(ledger)} bytes")

    rt = WasmRuntime()
    t0 = time.perf_counter()
    inst = rt.instantiate(ledger, Limits(memory=256 << 20, compute=10_000_000_000))
    print(f"compile + instantiate + _initialize: {(time.perf_counter() - t0) * 1e3:.1f} ms")
    t0 = time.perf_counter()
    rt.instantiate(ledger, Limits())
    print(f"instantiate (module cached): {(time.perf_counter() - t0) * 1e3:.2f} ms")

    inst.handle(message(0, "Mint", Quantity="1000000000"), ENV)
    n = args.messages
    transfers = [message(i, "Transfer", Recipient=f"user-{i % 1000:04d}", Quantity="1") for i in range(n)]
    balances = [message(i, "Balance", Target=f"user-{i % 1000:04d}") for i in range(n)]
    rate(inst, transfers[: n // 10])                 # warm up (grows the table to 1000 accounts)
    CPU.clear()
    runs = [rate(inst, transfers) for _ in range(3)]
    print(f"Transfer: {statistics.median(runs):,.0f} messages/s warm (median of 3 x {n}; "
          f"{1e6 / statistics.median(runs):.1f} µs per message; runs {', '.join(f'{r:,.0f}' for r in runs)}); "
          f"{statistics.median(CPU):,.0f} messages per CPU second")
    CPU.clear()
    runs = [rate(inst, balances) for _ in range(3)]
    print(f"Balance:  {statistics.median(runs):,.0f} messages/s warm (median of 3 x {n}); "
          f"{statistics.median(CPU):,.0f} messages per CPU second")
    print(f"  instance stats: {inst.stats}")

    bad = [message(i, "Transfer", Recipient="x", Quantity="-1") for i in range(200)]
    t0 = time.perf_counter()
    for m in bad:
        inst.handle(m, ENV)
    per_fail = (time.perf_counter() - t0) / len(bad)
    print(f"failed message (Result Error -> rollback in place): {per_fail * 1e6:.0f} µs each")
    loops = [message(i, "Transfer", Recipient="x", Quantity="1") for i in range(3)]
    tiny = rt.instantiate(ledger, Limits(memory=256 << 20, compute=2_000))
    tiny.handle(message(0, "Mint", Quantity="100"), ENV)
    t0 = time.perf_counter()
    for m in loops:
        r = tiny.handle(m, ENV)
    print(f"failed message (out of fuel -> fresh instance + restore): "
          f"{(time.perf_counter() - t0) / len(loops) * 1e6:.0f} µs each ({r.error})")

    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        inst.handle(transfers[0], ENV)
        image = inst.snapshot()
    snap = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        inst.restore(image)
    rest = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        rt.instantiate(ledger, Limits(), image=image)
    fresh = (time.perf_counter() - t0) / reps
    print(f"snapshot: {len(image) / 2**20:.2f} MiB in {snap * 1e3:.2f} ms (incl. one message); "
          f"restore: {rest * 1e3:.2f} ms; instantiate(image=...): {fresh * 1e3:.2f} ms")
    t0 = time.perf_counter()
    h = memory_hash(image)
    print(f"memory hash {h[:16]}… in {(time.perf_counter() - t0) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
