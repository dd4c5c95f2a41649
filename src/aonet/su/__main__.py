"""`python -m aonet.su`: run an SU on loopback, or verify a process's chain in a data directory.

    python -m aonet.su --data-dir DIR --port N [--wallet PATH] [--host 127.0.0.1] [--url URL] [--workers N]
    python -m aonet.su verify-chain DIR [PID ...]      (no PID: every process; exit 1 on any error)

Without --wallet the SU uses DIR/su-wallet.json, created as an Ed25519 key on first start.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..wallet import Wallet


def load_wallet(data_dir: Path, path: str | None, kind: str) -> Wallet:
    if path:
        return Wallet.load(path)
    default = data_dir / "su-wallet.json"
    if default.exists():
        return Wallet.load(default)
    wallet = Wallet.generate(kind)
    wallet.save(default)
    return wallet


def serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m aonet.su", description="run an aonet Scheduler Unit")
    p.add_argument("--data-dir", required=True, help="directory of the log (aonet.sqlite) and default wallet")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--url", help="public base URL for Scheduler-Location (default http://HOST:PORT)")
    p.add_argument("--wallet", help="key file (JWK or hex); default DATA_DIR/su-wallet.json")
    p.add_argument("--wallet-kind", default="ed25519", choices=["ed25519", "ethereum", "arweave"],
                   help="kind of the key created when there is none (default ed25519: fast signing)")
    p.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL", "EXTRA"],
                   help="SQLite durability (FULL: fsync per group commit; see docs/su.md)")
    p.add_argument("--max-item-size", type=int, default=10 * 1024 * 1024)
    p.add_argument("--workers", type=int, default=1,
                   help="SU processes sharing the port and the log (the log orders every slot); default 1")
    p.add_argument("--worker-fd", type=int, help=argparse.SUPPRESS)   # internal: a worker's inherited socket
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be at least 1")

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    wallet = load_wallet(data_dir, args.wallet, args.wallet_kind)
    url = args.url or f"http://{args.host}:{args.port}"
    if args.worker_fd is not None:
        _die_with_parent()
        return _run_worker(args, data_dir, wallet, url, socket.socket(fileno=args.worker_fd))
    if args.workers == 1:
        print(f"aonet SU {wallet.address} on {url} (data {data_dir})", flush=True)
        return _run_worker(args, data_dir, wallet, url, None)
    return _supervise(args, argv, data_dir, wallet, url)


def _run_worker(args, data_dir: Path, wallet: Wallet, url: str, sock: socket.socket | None) -> int:
    """One SU process: uvicorn (httptools + uvloop when installed) over the SU app."""
    import uvicorn

    from ..store.sqlite import open_store
    from .app import create_su_app
    app = create_su_app(lambda: open_store(data_dir, synchronous=args.synchronous), wallet, url=url,
                        max_item_size=args.max_item_size, publish_location=sock is None)
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    config = uvicorn.Config(app, host=args.host, port=args.port, loop=loop, http="httptools", log_level=args.log_level,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=10, proxy_headers=False,
                            server_header=False, date_header=False)
    uvicorn.Server(config).run(sockets=None if sock is None else [sock])
    return 0


def _supervise(args, argv: list[str], data_dir: Path, wallet: Wallet, url: str) -> int:
    """Bind the port once, publish the SU's location once, then run N workers on the shared socket.

    Workers accept from the same listening socket; the log's write lock orders their slots. A
    worker that dies takes the SU down (SIGTERM to the others, exit 1); SIGTERM/SIGINT here are
    passed on; workers get SIGKILL if this process is killed (PR_SET_PDEATHSIG).
    """
    from ..store.sqlite import open_store
    from .service import SchedulerService
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    store = open_store(data_dir, synchronous=args.synchronous)
    try:
        SchedulerService(store, wallet).publish_location(url)
    finally:
        store.close()
    fd = sock.fileno()
    child_argv = [a for a in argv]
    children = [subprocess.Popen([sys.executable, "-m", "aonet.su", *child_argv, "--worker-fd", str(fd)],
                                 pass_fds=(fd,)) for _ in range(args.workers)]
    print(f"aonet SU {wallet.address} on {url} (data {data_dir}, {args.workers} workers)", flush=True)

    stopping = False

    def forward(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    while any(c.poll() is None for c in children):
        for c in children:
            if c.poll() is not None and not stopping:
                print(f"aonet SU worker {c.pid} exited with {c.returncode}; stopping", file=sys.stderr, flush=True)
                code = 1
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    sock.close()
    return code


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the supervisor dies, even by SIGKILL (no orphan holds the port)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)          # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:                      # the supervisor is already gone
        os._exit(1)


def verify(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m aonet.su verify-chain",
                                description="re-check nonces, hash chain and signatures of processes in a log")
    p.add_argument("data_dir")
    p.add_argument("process_ids", nargs="*")
    args = p.parse_args(argv)
    from ..store.sqlite import open_store
    from .verify import verify_chain

    path = Path(args.data_dir)
    if not (path / "aonet.sqlite").exists():
        print(f"no log at {path / 'aonet.sqlite'}", file=sys.stderr)
        return 2
    store = open_store(path)
    try:
        pids = args.process_ids or store.process_ids()
        bad = 0
        for pid in pids:
            report = verify_chain(store, pid)
            print(report.summary())
            for err in report.errors:
                print("  " + err)
            bad += not report.ok
        return 1 if bad else 0
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "verify-chain":
        return verify(argv[1:])
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
