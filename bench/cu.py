"""CU benchmark: replay from genesis, warm messages/s, cold start from checkpoint, checkpoint cost.

    .venv/bin/python bench/cu.py [--n 10000 100000] [--warm 5000] [--mem-mib 32]

The token module is tests/modules/ledger.c (Mint once, then Transfers). The schedule is written
through the SU's own SchedulerService into its store, then read by the CU over HTTP from a real SU
on loopback (so replay figures include SU paging). Prints figures; asserts nothing about time.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from fixtures_su import SUThread  # noqa: E402

from aonet.cu.engine import Engine, EngineConfig, Target  # noqa: E402
from aonet.cu.service import ComputeUnit  # noqa: E402
from aonet.cu.sources import StoreModuleSource  # noqa: E402
from aonet.cu.storage import CUStorage, Position  # noqa: E402
from aonet.protocol import build_message, build_module, build_process  # noqa: E402
from aonet.store.sqlite import SQLiteStore  # noqa: E402
from aonet.su.service import SchedulerService  # noqa: E402
from aonet.vm.base import Limits  # noqa: E402
from aonet.vm.build import build_c_module  # noqa: E402
from aonet.wallet import Wallet  # noqa: E402


async def schedule(svc, items, batch=500):
    for i in range(0, len(items), batch):
        await asyncio.gather(*(svc.schedule_item(it) for it in items[i:i + batch]))


def transfers(user, pid, n):
    return [build_message(user, pid, tags=[("Action", "Transfer"), ("Recipient", f"r{i % 1000}"),
                                           ("Quantity", "1"), ("U", uuid.uuid4().hex[:8])]) for i in range(n)]


def run_cu(tmp, su, store, fn):
    async def main():
        cu = ComputeUnit(data_dir=tmp, su_url=su.url, modules=StoreModuleSource(store), workers=0,
                         engine_options={"checkpoint_every": 10**9, "checkpoint_seconds": 1e9})
        await cu.start()
        try:
            return await fn(cu)
        finally:
            await cu.close()
    return asyncio.run(main())


def bench_replay(n: int, warm: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="aonet-bench-cu-"))
    store = SQLiteStore(tmp / "su.sqlite", synchronous="NORMAL")
    su_wallet, user = Wallet.generate("ed25519"), Wallet.generate("ed25519")
    wasm = build_c_module(ROOT / "tests/modules/ledger.c")
    module = build_module(user, wasm, memory_limit="256-mb", compute_limit=10**9)
    store.put_item(module)
    svc = SchedulerService(store, su_wallet)
    proc = build_process(user, module.id, su_wallet.address)
    t = time.perf_counter()
    msgs = [build_message(user, proc.id, tags=[("Action", "Mint"), ("Quantity", str(10**12))])] + \
        transfers(user, proc.id, n - 1)
    asyncio.run(schedule(svc, [proc] + msgs))
    print(f"[n={n}] scheduled {n} messages in {time.perf_counter() - t:.1f} s")
    with SUThread(store, su_wallet) as su:
        async def replay(cu):
            t0 = time.perf_counter()
            await cu.result(msgs[-1].id, proc.id)
            dt = time.perf_counter() - t0
            t1 = time.perf_counter()
            await cu.checkpoint_all()
            return dt, time.perf_counter() - t1
        dt, ck = run_cu(tmp / "cu", su, store, replay)
        print(f"[n={n}] replay from genesis: {dt:.2f} s = {n / dt:,.0f} msgs/s (incl. SU paging); "
              f"checkpoint at end {ck * 1000:.1f} ms")
        extra = transfers(user, proc.id, warm)
        asyncio.run(schedule(SchedulerService(store, su_wallet), extra))

        async def warm_run(cu):
            await cu.result(msgs[-1].id, proc.id)                 # restore from checkpoint, live
            t0 = time.perf_counter()
            await cu.result(extra[-1].id, proc.id)
            return time.perf_counter() - t0
        dt = run_cu(tmp / "cu", su, store, warm_run)
        print(f"[n={n}] warm: {warm} messages in {dt:.2f} s = {warm / dt:,.0f} msgs/s (incl. SU paging)")

        # cold start from checkpoint vs from genesis, engine level
        cfg = EngineConfig(db_path=str(tmp / "cu" / "cu.sqlite"), su_url=su.url,
                           checkpoint_every=10**9, checkpoint_seconds=1e9)
        cu_meta = run_cu(tmp / "cu", su, store, lambda cu: cu.process(proc.id))
        meta, mod = cu_meta
        from dataclasses import asdict
        eng = Engine(cfg)
        eng.add_module(mod.id, wasm)
        t0 = time.perf_counter()
        eng.evaluate(asdict(meta), asdict(mod), Target(nonce=n + warm))
        print(f"[n={n}] cold start from checkpoint (+0 messages): {(time.perf_counter() - t0) * 1000:.1f} ms")
        eng.storage.close()
    store.close()


def bench_memory(mem_mib: int) -> None:
    """Checkpoint and restore of a `mem_mib` MiB image (a real ledger image padded by memory growth)."""
    from aonet.vm.wasm import WasmRuntime
    tmp = Path(tempfile.mkdtemp(prefix="aonet-bench-mem-"))
    wasm = build_c_module(ROOT / "tests/modules/ledger.c")
    rt = WasmRuntime()
    inst = rt.instantiate(wasm, Limits(memory=1 << 30, compute=10**9))
    env = {"Process": {"Id": "P", "Owner": "me", "Tags": []}, "Module": {"Id": "M", "Owner": "me", "Tags": []}}
    inst.handle({"Id": "m0", "Owner": "me", "From": "me", "Tags": [{"name": "Action", "value": "Mint"},
                 {"name": "Quantity", "value": "1000000000"}], "Timestamp": 1, "Data": ""}, env)
    i = 0
    while inst.memory_size() < mem_mib << 20 and i < 400_000:
        inst.handle({"Id": f"m{i}", "Owner": "me", "From": "me", "Timestamp": 2 + i, "Data": "", "Tags": [
            {"name": "Action", "value": "Transfer"}, {"name": "Recipient", "value": f"acct-{i}"},
            {"name": "Quantity", "value": "1"}]}, env)
        i += 1
    image = inst.snapshot()
    st = CUStorage(tmp / "cu.sqlite")
    times = []
    for k in range(5):
        t0 = time.perf_counter()
        img = inst.snapshot()
        st.save_checkpoint("P" + str(k), "M", Position(nonce=k), img, k)
        times.append(time.perf_counter() - t0)
    ck = st.latest_checkpoint("P0", "M")
    size = st.blob_size(ck.blob)
    rtimes = []
    for _ in range(5):
        t0 = time.perf_counter()
        mem = st.load_memory(ck.blob)
        again = rt.instantiate(wasm, Limits(memory=1 << 30, compute=10**9), image=mem)
        rtimes.append(time.perf_counter() - t0)
    assert again.memory_size() == len(image)
    print(f"[mem] image {len(image) / 2**20:.1f} MiB ({i} accounts): checkpoint (snapshot+zstd+sqlite) "
          f"median {sorted(times)[2] * 1000:.1f} ms, compressed {size / 2**20:.2f} MiB; cold start from checkpoint "
          f"(load+decompress+instantiate) median {sorted(rtimes)[2] * 1000:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="*", default=[10_000])
    ap.add_argument("--warm", type=int, default=5000)
    ap.add_argument("--mem-mib", type=int, default=32)
    args = ap.parse_args()
    bench_memory(args.mem_mib)
    for n in args.n:
        bench_replay(n, args.warm)


if __name__ == "__main__":
    main()
