"""`python -m aonet.su`: run an SU on loopback, or verify a process's chain in a data directory.

    python -m aonet.su --data-dir DIR --port N [--wallet PATH] [--host 127.0.0.1] [--url URL]
    python -m aonet.su verify-chain DIR [PID ...]      (no PID: every process; exit 1 on any error)

Without --wallet the SU uses DIR/su-wallet.json, created as an Ed25519 key on first start.
"""
from __future__ import annotations

import argparse
import sys
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
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)

    import uvicorn

    from ..store.sqlite import open_store
    from .app import create_su_app

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    wallet = load_wallet(data_dir, args.wallet, args.wallet_kind)
    url = args.url or f"http://{args.host}:{args.port}"
    app = create_su_app(lambda: open_store(data_dir, synchronous=args.synchronous), wallet, url=url,
                        max_item_size=args.max_item_size)
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    print(f"aonet SU {wallet.address} on {url} (data {data_dir})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, loop=loop, http="auto", log_level=args.log_level,
                access_log=False, lifespan="on", timeout_graceful_shutdown=10)
    return 0


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
