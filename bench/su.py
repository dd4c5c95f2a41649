"""Benchmark the SU: durable assignments per second and POST latency over real HTTP.

    .venv/bin/python bench/su.py                     # the four scenarios below
    .venv/bin/python bench/su.py --clients 16 --processes 100 --messages 20000
    .venv/bin/python bench/su.py --repeat 3          # three rounds over them, then the median of each
    .venv/bin/python bench/su.py --core-only         # in-process core + store, no HTTP
    .venv/bin/python bench/su.py --workers 2         # python -m aonet.su --workers 2

What it does: starts `python -m aonet.su` (a real subprocess, SQLite synchronous=FULL) on loopback,
spawns the processes, pre-signs every Message (not timed), then a client process fires them over
raw asyncio HTTP/1.1 keep-alive connections (one closed-loop connection per client; httpx costs
~300 us/request of client CPU, which on 2 cores would be measured as SU slowness). Every 200 is a
committed assignment (the SU answers only after COMMIT), so throughput = 200s / wall time.
"SU cpu us/assign" is user+system CPU of the SU and its workers per 200: on a shared machine
compare that, not only assign/s. In brackets: the same split by thread (`loop` = event loop,
`python` = the log's writer thread), the client's CPU per request and the load average at the end;
the next line is the log writer's view from /metrics (writes per commit, time per transaction and
in COMMIT, slots built ahead / rebuilt, mean time from a verified item's acceptance to its commit; one
worker's view with --workers).
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


# ---- a minimal HTTP/1.1 keep-alive client ----------------------------------------------------
class Conn:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def open(self) -> "Conn":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def post(self, body: bytes, path: str = "/") -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _drive(port: int, bodies_per_client: list[list[bytes]]) -> tuple[list[float], int, float]:
    conns = [await Conn("127.0.0.1", port).open() for _ in bodies_per_client]
    latencies: list[float] = []
    errors = 0

    async def run(conn: Conn, bodies: list[bytes]) -> None:
        nonlocal errors
        for body in bodies:
            t = time.perf_counter()
            status, _ = await conn.post(body)
            latencies.append(time.perf_counter() - t)
            if status != 200:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(run(c, b) for c, b in zip(conns, bodies_per_client)))
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return latencies, errors, wall


def _client_main(port: int, bodies_per_client: list[list[bytes]], out) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    cpu = time.process_time()
    latencies, errors, wall = asyncio.run(_drive(port, bodies_per_client))
    out.send((latencies, errors, wall, time.process_time() - cpu))


# ---- scenarios -------------------------------------------------------------------------------
def sign_messages(user, pids: list[str], n: int) -> list[bytes]:
    from aonet.protocol import build_message
    return [build_message(user, pids[i % len(pids)], data=f"bench {i}", tags=[("Action", "Bench")]).raw
            for i in range(n)]


def spawn_processes(port: int, su_address: str, user, count: int) -> list[str]:
    import httpx

    from aonet.protocol import build_process
    pids = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        for i in range(count):
            p = build_process(user, "M" * 43, su_address, tags=[("Name", f"bench-{i}")])
            r = c.post("/", content=p.raw)
            r.raise_for_status()
            pids.append(p.id)
    return pids


def scenario(su, user, clients: int, processes: int, messages: int) -> dict:
    pids = spawn_processes(su.port, su.address, user, processes)
    bodies = sign_messages(user, pids, messages)
    per_client = [bodies[i::clients] for i in range(clients)]
    cpu0, threads0 = _cpu_seconds(su.proc.pid), _thread_cpu(su.proc.pid)
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_client_main, args=(su.port, per_client, child))
    proc.start()
    latencies, errors, wall, client_cpu = parent.recv()
    proc.join()
    cpu = _cpu_seconds(su.proc.pid) - cpu0
    store = _store_metrics(su.port)
    threads = {k: v - threads0.get(k, 0.0) for k, v in _thread_cpu(su.proc.pid).items()}
    latencies.sort()
    ok = len(latencies) - errors
    return {"clients": clients, "processes": processes, "requests": len(latencies), "errors": errors,
            "wall_s": wall, "per_s": ok / wall,
            "p50_ms": statistics.median(latencies) * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
            "cpu_us": cpu / max(ok, 1) * 1e6, "client_cpu_us": client_cpu / max(len(latencies), 1) * 1e6,
            "threads": {k: v / max(ok, 1) * 1e6 for k, v in threads.items() if v > 0},
            "store": store}


def _store_metrics(port: int) -> dict[str, float]:
    """The log writer's counters from /metrics (one worker's view with --workers)."""
    import httpx
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    out = {}
    for line in text.splitlines():
        if line.startswith(("aonet_su_store_", "aonet_su_schedule_seconds_")):
            name, _, value = line.partition(" ")
            out[name[len("aonet_su_store_"):] if name.startswith("aonet_su_store_") else name] = float(value)
    return out


def _cpu_seconds(pid: int) -> float:
    """user+system CPU of the SU process and its workers (all threads): robust to other load."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of the SU process and its workers (e.g. event loop vs log writer)."""
    out: dict[str, float] = {}
    for p in [pid, *_children(pid)]:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                name = Path(f"/proc/{p}/task/{tid}/comm").read_text().strip()
                fields = Path(f"/proc/{p}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            name = "loop" if tid == str(p) else name
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def run_http(args) -> None:
    from aonet.wallet import Wallet
    user = Wallet.generate(args.client_kind)
    plans = ([(args.clients, args.processes, args.messages)] if args.clients else
             [(1, 1, 3000), (1, 100, 3000), (16, 1, 20000), (16, 100, 20000)])
    print(f"SU subprocess ({args.workers} worker{'s' if args.workers > 1 else ''}), SQLite "
          f"synchronous={args.synchronous}, SU wallet {args.su_kind}, client items signed with {args.client_kind}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'clients':>7} {'procs':>6} {'requests':>8} {'errors':>6} {'assign/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'SU cpu us/assign':>16}")
    rates: dict[tuple[int, int], list[float]] = {}
    for _round in range(args.repeat):            # rounds, not back-to-back repeats: host drift hits every row
        for clients, processes, messages in plans:
            r = _run_once(args, user, clients, processes, messages)
            rates.setdefault((clients, processes), []).append(r["per_s"])
    if args.repeat > 1:
        print(f"median of {args.repeat} rounds (min-max):")
        for (clients, processes), xs in rates.items():
            print(f"{clients:>7} {processes:>6} {statistics.median(xs):>9.0f} assign/s ({min(xs):.0f}-{max(xs):.0f})")


def _run_once(args, user, clients: int, processes: int, messages: int) -> dict:
    """One scenario on a fresh SU subprocess and log; prints its rows and returns its figures."""
    from fixtures_su import SUProcess
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--synchronous", args.synchronous, "--wallet-kind", args.su_kind, "--workers", str(args.workers)]
        with SUProcess(Path(tmp) / "su", extra_args=extra) as su:
            r = scenario(su, user, clients, processes, messages)
    print(f"{r['clients']:>7} {r['processes']:>6} {r['requests']:>8} {r['errors']:>6} {r['per_s']:>9.0f} "
          f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['cpu_us']:>16.0f}  ("
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["threads"].items(), key=lambda kv: -kv[1]))
          + f"; client {r['client_cpu_us']:.0f}; load {os.getloadavg()[0]:.1f})", flush=True)
    st = r["store"]
    if st.get("batches") and "write_seconds" in st:
        print(f"{'':>7} log writer: {st['writes'] / st['batches']:.1f} writes/commit, "
              f"{st['write_seconds'] / st['batches'] * 1e3:.2f} ms/transaction of which COMMIT "
              f"{st['commit_seconds'] / st['batches'] * 1e3:.2f} ms; slots built ahead {st['prebuilt']:.0f}, "
              f"rebuilt {st['rebuilt']:.0f}" + _accepted_to_durable(st), flush=True)
    return r


def _accepted_to_durable(st: dict[str, float]) -> str:
    """Mean of the SU's aonet_su_schedule_seconds: a verified item accepted -> its slot committed."""
    count = st.get("aonet_su_schedule_seconds_count")
    if not count:
        return ""
    return f"; accepted->durable mean {st['aonet_su_schedule_seconds_sum'] / count * 1e3:.2f} ms"


# ---- in-process core (no HTTP) ---------------------------------------------------------------
def run_core(args) -> None:
    from aonet.ans104 import parse
    from aonet.protocol import build_process
    from aonet.store.sqlite import SQLiteStore
    from aonet.su.core import classify, parse_item
    from aonet.su.service import SchedulerService
    from aonet.wallet import Wallet

    user = Wallet.generate(args.client_kind)
    print(f"in-process SchedulerService + SQLiteStore(synchronous={args.synchronous}), no HTTP")
    for kind in ("ed25519", "ethereum", "arweave"):
        su_wallet = Wallet.generate(kind)
        for processes in (1, 100):
            n = 600 if kind == "arweave" else 10000
            with tempfile.TemporaryDirectory() as tmp:
                store = SQLiteStore(Path(tmp) / "s.sqlite", synchronous=args.synchronous)
                svc = SchedulerService(store, su_wallet)
                procs = [build_process(user, "M" * 43, su_wallet.address) for _ in range(processes)]
                bodies = sign_messages(user, [p.id for p in procs], n)

                async def main():
                    for p in procs:
                        await svc.schedule_item(p)
                    t = time.perf_counter()
                    sem = asyncio.Semaphore(256)

                    async def one(raw):
                        async with sem:
                            item = parse_item(raw)     # parse + verify, as the HTTP path does
                            await svc.schedule_item(item)
                    await asyncio.gather(*(one(b) for b in bodies))
                    return time.perf_counter() - t
                wall = asyncio.run(main())
                store.close()
            print(f"  SU wallet {kind:8} processes {processes:>3}: {n / wall:>7.0f} assignments/s "
                  f"(incl. verify of the posted item; {store.stats['batches']} commits)", flush=True)
    _ = (parse, classify)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--messages", type=int, default=10000)
    p.add_argument("--synchronous", default="FULL")
    p.add_argument("--workers", type=int, default=1, help="SU worker processes (python -m aonet.su --workers)")
    p.add_argument("--su-kind", default="ed25519")
    p.add_argument("--client-kind", default="ed25519")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds over the scenarios; prints each run, then the median (the host drifts +-8%%)")
    p.add_argument("--core-only", action="store_true")
    args = p.parse_args()
    if args.core_only:
        run_core(args)
    else:
        run_http(args)


if __name__ == "__main__":
    main()
