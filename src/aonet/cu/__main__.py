"""`python -m aonet.cu --data-dir DIR --port N --su URL --gateway URL [--workers N]`: one CU on loopback."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from ..wallet import Wallet
from .app import create_cu_app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m aonet.cu", description="aonet Compute Unit")
    ap.add_argument("--data-dir", required=True, help="where cu.sqlite and cu-wallet.json live")
    ap.add_argument("--port", type=int, default=6363)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--su", required=True, help="the SU's URL")
    ap.add_argument("--gateway", required=True, help="the gateway's URL (modules, assigned items)")
    ap.add_argument("--workers", type=int, default=2, help="evaluation worker processes (0 = in-process)")
    ap.add_argument("--wallet", help="wallet file (default DATA_DIR/cu-wallet.json, created if missing)")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    wpath = Path(args.wallet) if args.wallet else data / "cu-wallet.json"
    if wpath.exists():
        wallet = Wallet.load(wpath)
    else:
        wallet = Wallet.generate("ed25519")
        wallet.save(wpath)
    app = create_cu_app(data_dir=data, su_url=args.su, gateway_url=args.gateway, wallet=wallet, workers=args.workers)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
