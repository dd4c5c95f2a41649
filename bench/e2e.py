"""End-to-end benchmark of a devnet: message -> result latency and cascade throughput.

    .venv/bin/python bench/e2e.py [--n 300] [--fan 500] [--rounds 300] [--synchronous NORMAL|FULL]
                                  [--cu-workers 0] [--mu-wallet arweave|ed25519] [--no-links]
                                  [--no-uvloop] [--breakdown]

The devnet (gateway, SU, CU, MU in one process, as `aonet up` runs it) is started in a child process
so the client does not share its GIL. Figures:
- latency: POST a signed message to the MU, then GET /result from the CU (what aoconnect's
  `message` + `result` do), on a warm process; p50 / p99 / mean.
- cascade: a Fan of F messages to 10 sinks and a ping-pong of R rounds, started together; messages
  delivered by the MU per second until its queue is empty.
`--synchronous` defaults to the devnet's (NORMAL); `--no-links` makes the units talk HTTP to each
other as in separate processes; `--breakdown` times each stage of the latency run inside the devnet
(wrapping the units' functions, so it adds a little) and prints p50 per stage.
Goal (issue): p50 <= 5 ms. Prints figures and the load average; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


# ---- --breakdown: stage timings inside the devnet process -------------------------------------------
STAGES = [  # (module, object, attribute, label): what one message -> result passes through
    ("aonet.mu.app", "MessengerUnit", "submit", "MU submit (verify, push, enqueue)"),
    ("aonet.mu.app", None, "parse", "  MU parse + verify item"),
    ("aonet.mu.worker", "Crank", "push", "  MU push to SU"),
    ("aonet.su.service", "SchedulerService", "schedule_item", "    SU schedule (sign, commit)"),
    ("aonet.mu.queue", "TaskQueue", "add", "  MU enqueue result pull"),
    ("aonet.mu.worker", "Crank", "fetch_result", "MU pull result"),
    ("aonet.cu.service", "ComputeUnit", "result", "CU result (both pulls)"),
    ("aonet.cu.sources", "SUClient", "message", "  CU asks SU for the slot"),
    ("aonet.cu.service", "ComputeUnit", "_engine", "  CU evaluate (with thread hop)"),
    ("aonet.cu.engine", "Engine", "evaluate", "    engine evaluate"),
    ("aonet.cu.engine", "Engine", "_handle", "      wasm handle"),
    ("aonet.cu.engine", "Engine", "_flush", "      store results"),
    ("aonet.cu.app", None, "sign_response", "  CU sign response"),
]


def instrument(events: list) -> None:
    """Wrap each stage so that it appends (label, seconds) to `events`."""
    import functools
    import importlib
    import inspect

    def wrap(owner, name, label):
        fn = getattr(owner, name)
        if inspect.iscoroutinefunction(fn):
            async def timed(*a, **k):
                t0 = time.perf_counter()
                try:
                    return await fn(*a, **k)
                finally:
                    events.append((label, time.perf_counter() - t0))
        else:
            def timed(*a, **k):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    events.append((label, time.perf_counter() - t0))
        setattr(owner, name, functools.wraps(fn)(timed))

    for module, obj, attr, label in STAGES:
        mod = importlib.import_module(module)
        owner = getattr(mod, obj) if obj else mod
        if hasattr(owner, attr):
            wrap(owner, attr, label)


def serve(args) -> None:
    events: list = []
    if args.breakdown:
        instrument(events)
    from aonet.node import NodeConfig, start_background
    from aonet.vm.build import build_c_module
    wasm = build_c_module(ROOT / "tests" / "modules" / "pingpong.c")
    net = start_background(NodeConfig(data_dir=args.data_dir, port=0, modules=(), extra_modules={"pingpong": wasm},
                                      synchronous=args.synchronous, cu_workers=args.cu_workers,
                                      mu_wallet_kind=args.mu_wallet, write_config=False,
                                      links=not args.no_links, uvloop=not args.no_uvloop))
    print(json.dumps({"urls": net.urls, "modules": net.modules, "scheduler": net.scheduler}), flush=True)
    try:
        for line in sys.stdin:          # control lines from the client; EOF stops the devnet
            if line.strip() == "reset":
                events.clear()
            elif line.strip() == "dump":
                print(json.dumps(events), flush=True)
    finally:
        net.stop()


def print_breakdown(events: list, n: int) -> None:
    by: dict[str, list[float]] = {}
    for label, seconds in events:
        by.setdefault(label, []).append(seconds * 1000)
    print(f"  stages inside the devnet (p50 ms, calls per message; two pulls per message: MU + client):")
    for _, _, _, label in STAGES:
        xs = by.get(label)
        if xs:
            print(f"    {label:40} {statistics.median(xs):7.3f}   x{len(xs) / n:.1f}")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="latency samples")
    ap.add_argument("--fan", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--synchronous", default=None, help="SQLite durability of the log (default: the devnet's)")
    ap.add_argument("--cu-workers", type=int, default=0)
    ap.add_argument("--mu-wallet", default="arweave")
    ap.add_argument("--no-links", action="store_true", help="units talk HTTP to each other (as in separate processes)")
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--breakdown", action="store_true", help="print where the latency goes, stage by stage")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.synchronous is None:
        from aonet.node import DEVNET_SYNCHRONOUS
        args.synchronous = DEVNET_SYNCHRONOUS
    if args.serve:
        return serve(args)

    from aonet.protocol import build_message, build_process
    from aonet.wallet import Wallet

    data_dir = tempfile.mkdtemp(prefix="aonet-bench-")
    flags = [f for f, on in (("--no-links", args.no_links), ("--no-uvloop", args.no_uvloop),
                             ("--breakdown", args.breakdown)) if on]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--data-dir", data_dir,
                              "--synchronous", args.synchronous, "--cu-workers", str(args.cu_workers),
                              "--mu-wallet", args.mu_wallet, *flags],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        info = json.loads(child.stdout.readline())
        mu, cu, sched, mod = info["urls"]["mu"], info["urls"]["cu"], info["scheduler"], info["modules"]["pingpong"]
        http = httpx.Client(timeout=120, transport=httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]))
        w = Wallet.generate("arweave")      # what aoconnect users sign with

        def spawn() -> str:
            p = build_process(w, mod, sched, anchor=secrets.token_hex(16))
            assert http.post(mu, content=p.raw).status_code == 202
            return p.id

        def message(pid, action, data=" ", **tags):
            m = build_message(w, pid, data=data, anchor=secrets.token_hex(16),
                              tags=[("Action", action), *[(k, str(v)) for k, v in tags.items()]])
            r = http.post(mu, content=m.raw, headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 202, r.text
            return m.id

        def result(pid, mid):
            r = http.get(f"{cu}/result/{mid}", params={"process-id": pid})
            assert r.status_code == 200, r.text
            return r.json()

        def idle():
            while True:
                t = http.get(f"{mu}/health").json()["tasks"]
                if t.get("pending", 0) == 0:
                    return t
                time.sleep(0.01)

        # ---- latency on a warm process ----
        pid = spawn()
        for _ in range(20):
            result(pid, message(pid, "Hit"))
        idle()
        items = [build_message(w, pid, anchor=secrets.token_hex(16), tags=[("Action", "Hit")]) for _ in range(args.n)]
        lat, post_lat = [], []
        child.stdin.write("reset\n")
        child.stdin.flush()
        for m in items:
            t0 = time.perf_counter()
            assert http.post(mu, content=m.raw).status_code == 202
            t1 = time.perf_counter()
            result(pid, m.id)
            t2 = time.perf_counter()
            lat.append(t2 - t0)
            post_lat.append(t1 - t0)
        ms = [x * 1000 for x in lat]
        print(f"message -> result  (n={args.n}, synchronous={args.synchronous}, cu_workers={args.cu_workers}, "
              f"mu wallet {args.mu_wallet}, links {'off' if args.no_links else 'on'}, "
              f"uvloop {'off' if args.no_uvloop else 'on'})")
        print(f"  p50 {statistics.median(ms):.2f} ms   p99 {pct(ms, 99):.2f} ms   mean {statistics.mean(ms):.2f} ms")
        pm = [x * 1000 for x in post_lat]
        print(f"  of which POST to MU (verify + SU schedule, durable): p50 {statistics.median(pm):.2f} ms")
        if args.breakdown:
            child.stdin.write("dump\n")
            child.stdin.flush()
            print_breakdown(json.loads(child.stdout.readline()), args.n)
        idle()

        # ---- cascade throughput ----
        sinks = [spawn() for _ in range(10)]
        fan, a, b = spawn(), spawn(), spawn()
        idle()
        before = http.get(f"{mu}/health").json()["tasks"].get("done", 0)
        t0 = time.perf_counter()
        message(fan, "Fan", data=",".join(sinks), N=args.fan)
        message(a, "Start", Peer=b, Rounds=args.rounds)
        after = idle().get("done", 0)
        dt = time.perf_counter() - t0
        pushed = args.fan + args.rounds
        print(f"cascade: fan-out {args.fan} + ping-pong {args.rounds} rounds = {pushed} pushed messages "
              f"in {dt:.2f} s -> {pushed / dt:.0f} messages/s  ({after - before} tasks done)")
        t0 = time.perf_counter()
        message(a, "Start", Peer=b, Rounds=100)
        idle()
        dt = time.perf_counter() - t0
        print(f"ping-pong alone: 100 rounds in {dt:.2f} s -> {dt * 10:.1f} ms per hop")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        child.stdin.close()
        child.wait(30)


if __name__ == "__main__":
    main()
