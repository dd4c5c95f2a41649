"""CU benchmark: replay from genesis, cold start from a checkpoint, warm backlog, live messages, /result.

    .venv/bin/python bench/cu.py [--n 10000 100000] [--warm 5000] [--live 300] [--mem-mib 32]
                                 [--compare-prefetch] [--skip-mem]

The token module is tests/modules/ledger.c (one Mint, then Transfers to 1000 recipients). The
schedule (process + n + warm messages) is written through the SU's own SchedulerService into an SU
data directory, cached under $AONET_CACHE/bench-cu (copied per run), and served by a real SU in its
own process (`python -m aonet.su`), so the SU never shares the CU's GIL. The CU (`ComputeUnit`,
workers=0, default checkpoint policy) reads it over loopback HTTP, pages of 1000.

Figures (each also per CPU second: the host is shared, so wall-clock rates swing with its load):
- replay: evaluate nonces 0..n from genesis (cold CU, empty database);
- cold start: a new engine on the same database brought to nonce n (restore the checkpoint, +0 msgs);
- warm backlog: `warm` further messages evaluated by that (now live) CU in one /result call;
- live: `live` messages POSTed to the SU one at a time, each followed by /result (latency-bound);
- /result of an evaluated message: database lookup vs the in-memory LRU.
Prints figures; asserts nothing about time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import httpx  # noqa: E402
from fixtures_su import SUProcess  # noqa: E402

from aonet.cu.engine import Target  # noqa: E402
from aonet.cu.service import ComputeUnit  # noqa: E402
from aonet.cu.sources import StoreModuleSource, default_cache_dir  # noqa: E402
from aonet.cu.storage import CUStorage, Position  # noqa: E402
from aonet.protocol import build_message, build_module, build_process  # noqa: E402
from aonet.store.sqlite import open_store  # noqa: E402
from aonet.su.service import SchedulerService  # noqa: E402
from aonet.vm.base import Limits  # noqa: E402
from aonet.vm.build import build_c_module  # noqa: E402
from aonet.wallet import Wallet  # noqa: E402

CACHE_VERSION = "v1"


def transfer(user, pid, i):
    return build_message(user, pid, tags=[("Action", "Transfer"), ("Recipient", f"r{i % 1000}"), ("Quantity", "1"),
                                          ("U", uuid.uuid4().hex[:8])])


def su_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(n: int, warm: int) -> Path:
    """An SU data dir holding process + n + warm messages (cached: scheduling 100k takes minutes)."""
    cache = Path(default_cache_dir()) / "bench-cu" / f"{CACHE_VERSION}-n{n}-w{warm}"
    if (cache / "ids.json").exists():
        print(f"[n={n}] schedule from cache {cache}")
        return cache
    shutil.rmtree(cache, ignore_errors=True)
    (cache / "su").mkdir(parents=True)
    su_wallet, user = Wallet.generate("ed25519"), Wallet.generate("ed25519")
    su_wallet.save(cache / "su" / "su-wallet.json")
    store = open_store(cache / "su", synchronous="NORMAL")
    module = build_module(user, build_c_module(ROOT / "tests/modules/ledger.c"), memory_limit="256-mb",
                          compute_limit=10**9)
    store.put_item(module)
    proc = build_process(user, module.id, su_wallet.address)
    mint = build_message(user, proc.id, tags=[("Action", "Mint"), ("Quantity", str(10**12))])
    svc = SchedulerService(store, su_wallet)
    t = time.perf_counter()
    last_backlog = last = None

    async def schedule():
        nonlocal last_backlog, last
        await svc.schedule_item(proc)
        await svc.schedule_item(mint)
        total = n - 1 + warm
        for i in range(0, total, 500):
            items = [transfer(user, proc.id, j) for j in range(i, min(i + 500, total))]
            await asyncio.gather(*(svc.schedule_item(it) for it in items))
            for j, it in enumerate(items, start=i):
                if j == n - 2:
                    last_backlog = it.id
            last = items[-1].id
    asyncio.run(schedule())
    store.close()
    user.save(cache / "user-wallet.json")
    (cache / "ids.json").write_text(json.dumps({"process": proc.id, "module": module.id, "backlog_last": last_backlog,
                                                "warm_last": last, "n": n, "warm": warm}))
    print(f"[n={n}] scheduled {n + warm} messages in {time.perf_counter() - t:.1f} s (cached in {cache})")
    return cache


class Meter:
    """Wall and CPU time of this process and of the SU process over a block."""

    def __init__(self, su_pid: int):
        self.su_pid = su_pid

    def __enter__(self):
        self.t, self.c, self.s = time.perf_counter(), time.process_time(), su_cpu(self.su_pid)
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.cpu = time.process_time() - self.c
        self.su = su_cpu(self.su_pid) - self.s

    def rate(self, count: int) -> str:
        return (f"{self.wall:.2f} s = {count / self.wall:,.0f} msgs/s wall; CU CPU {self.cpu:.2f} s "
                f"({count / max(self.cpu, 1e-9):,.0f} msgs per CU-CPU-s), SU CPU {self.su:.2f} s")


def bench_schedule(n: int, warm: int, live: int, compare_prefetch: bool) -> None:
    cache = prepare(n, warm)
    ids = {**json.loads((cache / "ids.json").read_text()), "cache": str(cache)}
    tmp = Path(tempfile.mkdtemp(prefix="aonet-bench-cu-"))
    shutil.copytree(cache / "su", tmp / "su")
    store = open_store(tmp / "su", synchronous="NORMAL")          # the module source (read-only here)
    try:
        with SUProcess(tmp / "su") as su:
            variants = [True, False] if compare_prefetch else [True]
            for prefetch in variants:
                name = "cu" if prefetch else "cu-noprefetch"
                label = "" if not compare_prefetch else (" [prefetch]" if prefetch else " [no prefetch]")
                _replay(tmp / name, su, store, ids, n, warm, live if prefetch else 0, prefetch, label)
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _replay(data_dir: Path, su, store, ids: dict, n: int, warm: int, live: int, prefetch: bool, label: str) -> None:
    pid = ids["process"]
    opts = {"prefetch": prefetch}

    async def main():
        cu = ComputeUnit(data_dir=data_dir, su_url=su.url, modules=StoreModuleSource(store), workers=0,
                         engine_options=opts)
        await cu.start()
        try:
            await cu.process(pid)
            with Meter(su.proc.pid) as m:
                await cu.result(ids["backlog_last"], pid)
            eng = cu.backend.engine
            print(f"[n={n}]{label} replay from genesis, {n + 1} msgs (incl. SU paging): {m.rate(n + 1)}; "
                  f"{eng.stats['checkpoints']} checkpoints on the way ({eng.stats['checkpoint_ms']:.0f} ms)")
            t = time.perf_counter()
            await cu.checkpoint_all()
            print(f"[n={n}]{label} checkpoint at nonce {n}: {(time.perf_counter() - t) * 1000:.1f} ms")
            return await cu.process(pid)
        finally:
            await cu.close()
    meta, mod = asyncio.run(main())
    if not prefetch:
        return

    # a new CU on the same database: cold start from the checkpoint (evaluate to nonce n: restore,
    # +0 messages), then the warm backlog through /result on the now live instance
    async def warm_main():
        cu = ComputeUnit(data_dir=data_dir, su_url=su.url, modules=StoreModuleSource(store), workers=0,
                         engine_options=opts)
        await cu.start()
        try:
            await cu.process(pid)
            t = time.perf_counter()
            s = await cu.evaluate(pid, Target(nonce=n))
            cold = time.perf_counter() - t
            eng = cu.backend.engine
            print(f"[n={n}] cold start from checkpoint (new CU, restore, +{s.evaluated} msgs): {cold * 1000:.1f} ms "
                  f"(restores={eng.stats['restores']}, cold_starts={eng.stats['cold_starts']})")
            before = eng.stats["evaluated"]
            with Meter(su.proc.pid) as m:
                await cu.result(ids["warm_last"], pid)
            done = eng.stats["evaluated"] - before
            print(f"[n={n}] warm backlog: {done} new msgs on the live instance, one /result: {m.rate(done)}")
        finally:
            await cu.close()
    asyncio.run(warm_main())

    if live:
        _live(data_dir, su, store, ids, live)


def _live(data_dir: Path, su, store, ids: dict, live: int) -> None:
    """POST one message to the SU, then /result it: the MU's pattern, one message per request."""
    pid = ids["process"]
    user = Wallet.load(Path(ids["cache"]) / "user-wallet.json")
    msgs = [transfer(user, pid, i) for i in range(live)]

    async def main():
        cu = ComputeUnit(data_dir=data_dir, su_url=su.url, modules=StoreModuleSource(store), workers=0)
        await cu.start()
        try:
            await cu.result(ids["warm_last"], pid)                  # live instance at the head
            lat = []
            async with httpx.AsyncClient(timeout=60) as http:
                with Meter(su.proc.pid) as m:
                    for it in msgs:
                        t = time.perf_counter()
                        r = await http.post(su.url + "/", content=it.raw)
                        assert r.status_code == 200, r.text
                        await cu.result(it.id, pid)
                        lat.append(time.perf_counter() - t)
            print(f"[n={ids['n']}] live: {live} x (POST to SU + /result): {m.rate(live)}; latency p50 "
                  f"{statistics.median(lat) * 1000:.1f} ms, p95 {sorted(lat)[int(len(lat) * .95)] * 1000:.1f} ms")
            # /result of evaluated messages: LRU hits vs database reads
            sample = [it.id for it in msgs]
            t = time.perf_counter()
            for mid in sample:
                await cu.result(mid, pid)
            hit = (time.perf_counter() - t) / len(sample)
            cu.result_cache.clear()
            t = time.perf_counter()
            for mid in sample:
                await cu.result(mid, pid)
            miss = (time.perf_counter() - t) / len(sample)
            print(f"[n={ids['n']}] /result of an evaluated message (service level): LRU hit {hit * 1e6:.0f} µs, "
                  f"database {miss * 1e6:.0f} µs")
        finally:
            await cu.close()
    asyncio.run(main())


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
    st.close()
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"[mem] image {len(image) / 2**20:.1f} MiB ({i} accounts): checkpoint (snapshot+zstd+sqlite) "
          f"median {sorted(times)[2] * 1000:.1f} ms, compressed {size / 2**20:.2f} MiB; cold start from checkpoint "
          f"(load+decompress+instantiate) median {sorted(rtimes)[2] * 1000:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="*", default=[10_000])
    ap.add_argument("--warm", type=int, default=5000)
    ap.add_argument("--live", type=int, default=300)
    ap.add_argument("--mem-mib", type=int, default=32)
    ap.add_argument("--skip-mem", action="store_true")
    ap.add_argument("--compare-prefetch", action="store_true", help="also replay with SU prefetch off")
    args = ap.parse_args()
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (wall-clock rates depend on it)")
    if not args.skip_mem:
        bench_memory(args.mem_mib)
    for n in args.n:
        bench_schedule(n, args.warm, args.live, args.compare_prefetch)


if __name__ == "__main__":
    main()
