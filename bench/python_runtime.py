"""Figures for the CPython process runtime: boot time, checkpoint size, token transfers per second.

    .venv/bin/python bench/python_runtime.py [--transfers 5000]

Goal: >= 5,000 transfers/s on a warm instance (each Transfer emits a Debit- and a Credit-Notice).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
import time
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import token_cases as tc  # noqa: E402

from aonet.vm.python import PythonRuntime, python_module  # noqa: E402


def boot_msg(source: str) -> dict:
    return {"Id": tc.PROCESS_ID, "From": tc.OWNER, "Owner": tc.OWNER, "Target": tc.PROCESS_ID, "Data": source,
            "Timestamp": 1_700_000_000_000, "Block-Height": 1000,
            "Tags": [{"name": "Type", "value": "Process"}, {"name": "Module", "value": "M" * 43}]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transfers", type=int, default=5000)
    args = ap.parse_args()
    t = time.perf_counter()
    module = python_module()
    print(f"module: {len(module):,} bytes, sha256 {hashlib.sha256(module).hexdigest()[:16]}, "
          f"load/build {time.perf_counter() - t:.2f} s")
    rt = PythonRuntime()
    t = time.perf_counter()
    rt.wasm.compile(module)
    print(f"compile (or load from the disk cache): {time.perf_counter() - t:.3f} s")
    env = tc.env()
    for label, source in (("empty process", ""), ("token blueprint", "from ao.blueprints import token\n")):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            inst = rt.instantiate()
            r = inst.handle(boot_msg(source), env)
            times.append(time.perf_counter() - t)
            assert r.error is None, r.error
        print(f"boot ({label}): instantiate + Process message {min(times) * 1000:.1f} ms (best of 5), "
              f"gas {r.gas_used:,}")
    image = inst.snapshot()
    z = zstandard.ZstdCompressor(level=3).compress(image)
    g = gzip.compress(image, 6)
    print(f"checkpoint after boot: {len(image):,} bytes raw, {len(z):,} zstd-3, {len(g):,} gzip-6")
    t = time.perf_counter()
    rt.instantiate(image=image)
    print(f"restore into a fresh instance: {(time.perf_counter() - t) * 1000:.1f} ms")

    accounts = [f"acct{i:039d}" for i in range(100)]
    n = args.transfers
    msgs = []
    for i in range(n):
        m = tc.msg(tc.PROCESS_ID, "Transfer", Recipient=accounts[i % 100], Quantity="1")
        msgs.append(m)
    for m in msgs[:200]:                       # warm up
        inst.handle(m, env)
    t = time.perf_counter()
    gas = 0
    for m in msgs:
        r = inst.handle(m, env)
        gas += r.gas_used
    dt = time.perf_counter() - t
    assert r.error is None and len(r.messages) == 2, r
    print(f"transfers: {n / dt:,.0f}/s warm ({dt / n * 1e6:.0f} us each, gas {gas // n:,} each), "
          f"checkpoints {inst.stats['checkpoints']}")
    image = inst.snapshot()
    z = zstandard.ZstdCompressor(level=3).compress(image)
    print(f"checkpoint after {n + 200} transfers: {len(image):,} bytes raw, {len(z):,} zstd-3")


if __name__ == "__main__":
    main()
