"""A whole devnet (gateway, SU, CU, MU) on free loopback ports in a temp dir, for end-to-end tests.

    from fixtures_devnet import devnet, make_devnet, pingpong_wasm, unit_wallets  # noqa: F401

- `devnet` (module scope): a running `aonet.node.BackgroundDevnet` with the `pingpong` test module
  published (`devnet.modules["pingpong"]`), cron monitors polled every 0.2 s, `devnet.wallet_path`
  a user key. Attributes: `gateway_url`, `su_url`, `cu_url`, `mu_url`, `scheduler`, `mu_address`,
  `modules`, `mu` (the MessengerUnit), `store`, `call(coro)`.
- `make_devnet(**overrides)`: a factory for tests that need their own (stopped at teardown).
- `pingpong_wasm`: tests/modules/pingpong.c built with aonet.vm.build (cached).
Unit keys are generated once per session and copied in, so starting a devnet costs no RSA keygen.
"""
from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from aonet.protocol import build_process
from aonet.node import NodeConfig, start_background, unit_wallet
from aonet.wallet import Wallet

MODULES = Path(__file__).resolve().parent / "modules"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pingpong_wasm() -> bytes:
    from aonet.vm.build import build_c_module
    return build_c_module(MODULES / "pingpong.c")


@pytest.fixture(scope="session")
def unit_wallets(tmp_path_factory) -> Path:
    """A data dir holding wallets/{su,mu,cu,publisher}.json and wallet.json, made once."""
    d = tmp_path_factory.mktemp("devnet-keys")
    for unit, kind in (("su", "ed25519"), ("mu", "arweave"), ("cu", "ed25519"), ("publisher", "arweave")):
        unit_wallet(d, unit, kind)
    Wallet.generate("arweave").save(d / "wallet.json")
    return d


def seed(data_dir: Path, keys: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(keys / "wallets", data_dir / "wallets", dirs_exist_ok=True)
    if not (data_dir / "wallet.json").exists():
        shutil.copy(keys / "wallet.json", data_dir / "wallet.json")
    return data_dir


def devnet_config(data_dir: Path, pingpong: bytes, **overrides) -> NodeConfig:
    base = dict(data_dir=data_dir, port=0, modules=(), extra_modules={"pingpong": pingpong},
                monitor_interval=0.2, synchronous="NORMAL", write_config=True)
    base.update(overrides)
    return NodeConfig(**base)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory, pingpong_wasm, unit_wallets):
    data_dir = seed(tmp_path_factory.mktemp("devnet"), unit_wallets)
    net = start_background(devnet_config(data_dir, pingpong_wasm))
    yield net
    net.stop()


@pytest.fixture()
def make_devnet(tmp_path, pingpong_wasm, unit_wallets):
    started = []

    def make(data_dir: Path | None = None, **overrides):
        d = seed(data_dir or tmp_path / f"devnet{len(started)}", unit_wallets)
        net = start_background(devnet_config(d, pingpong_wasm, **overrides))
        started.append(net)
        return net

    yield make
    for net in started:
        net.stop()


@contextlib.contextmanager
def aonet_up(data_dir: Path, modules: str, timeout: float = 180):
    """`aonet up --port 0 --modules MODULES` as a person runs it (a subprocess); yields (proc, banner).

    The banner is stdout up to the 'Ctrl-C stops' line, printed once every unit serves. On exit the
    devnet gets SIGINT and must stop cleanly (exit 0)."""
    log = data_dir / "up.stderr"            # a file, not a pipe: a chatty devnet must never block on it
    cmd = [sys.executable, "-m", "aonet.cli", "up", "--port", "0", "--modules", modules, "--data-dir", str(data_dir)]
    with open(log, "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not (seen and seen[-1].startswith("Ctrl-C")):
            try:
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(f"aonet up did not start (exit {proc.poll()}): {''.join(seen)!r}\n"
                                         f"{log.read_text()[-4000:]}") from None
        yield proc, "".join(seen)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert code == 0, log.read_text()[-4000:]


def mu_post(url: str, item) -> dict:
    """POST a signed item to an MU as AO's clients do; the MU must accept it (202)."""
    r = httpx.post(url, content=item.raw, headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()


def spawn_pingpong(net, wallet, tags=()) -> str:
    """Spawn a process of the `pingpong` test module through the MU; returns its id."""
    p = build_process(wallet, net.modules["pingpong"], net.scheduler, tags=tags, anchor=secrets.token_hex(16))
    assert mu_post(net.mu_url, p)["id"] == p.id
    return p.id
