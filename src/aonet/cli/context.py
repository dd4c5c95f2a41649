"""From parsed arguments to what a command works with: the devnet config, the wallet, a Client.

Precedence for every setting: command-line flag, then environment (MU_URL, CU_URL, SU_URL,
GATEWAY_URL, AONET_WALLET), then devnet.json, then built-in defaults.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..client import Client, ConfigError, connect
from ..config import ConfigFileError, DevnetConfig, config_path, default_data_dir, default_wallet_path


@dataclass
class Context:
    args: argparse.Namespace

    def opt(self, name: str, default=None):
        return getattr(self.args, name, default)

    @property
    def data_dir(self) -> Path:
        d = self.opt("data_dir")
        return Path(d).expanduser() if d else default_data_dir()

    @cached_property
    def config(self) -> DevnetConfig:
        """devnet.json if it exists; an empty config otherwise (flags/env may still name the units)."""
        path = config_path(self.data_dir)
        return DevnetConfig.load(path) if path.exists() else DevnetConfig()

    def wallet_path(self) -> Path | None:
        for candidate in (self.opt("wallet"), os.environ.get("AONET_WALLET"), self.config.wallet):
            if candidate:
                return Path(candidate).expanduser()
        p = default_wallet_path(self.data_dir)
        return p if p.exists() else None

    def url(self, unit: str) -> str | None:
        env = {"mu": "MU_URL", "cu": "CU_URL", "su": "SU_URL", "gateway": "GATEWAY_URL"}[unit]
        return self.opt(unit) or os.environ.get(env) or getattr(self.config, f"{unit}_url")

    def client(self, *, signing: bool = False) -> Client:
        wallet = self.wallet_path()
        if signing and wallet is None:
            raise ConfigError("no wallet: create one with `aonet wallet new` or pass --wallet PATH")
        if not (self.url("mu") or self.url("cu") or self.url("su")):
            raise ConfigError(f"no units known: start a devnet with `aonet up` (expects "
                              f"{config_path(self.data_dir)}) or pass --mu/--cu/--su URLs")
        return connect(mu_url=self.url("mu"), cu_url=self.url("cu"), su_url=self.url("su"),
                       gateway_url=self.url("gateway"), wallet=wallet)


__all__ = ["Context", "ConfigFileError"]
