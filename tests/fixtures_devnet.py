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

import shutil
from pathlib import Path

import pytest

from aonet.node import NodeConfig, start_background, unit_wallet
from aonet.wallet import Wallet

MODULES = Path(__file__).resolve().parent / "modules"


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
