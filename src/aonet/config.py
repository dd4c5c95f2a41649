"""Where a devnet is and what it holds: the `devnet.json` that `aonet up` writes and the CLI reads.

One small file in the data directory (default `~/.aonet`, or `$AONET_HOME`):

    {"version": 1, "mu_url": "http://127.0.0.1:4002", "cu_url": "...", "su_url": "...",
     "gateway_url": "...", "scheduler": "<SU wallet address>", "mu_address": "<MU wallet address>",
     "modules": {"lua": "<module id>", "python": "<module id>"}, "wallet": "<path of the user's key>"}

`scheduler` is the value for a Process's Scheduler tag; `mu_address` is what aos-style processes must
trust as Authority (the MU signs every pushed message). Unknown keys are kept (in `extra`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

CONFIG_NAME = "devnet.json"
WALLET_NAME = "wallet.json"
VERSION = 1


class ConfigFileError(ValueError):
    """devnet.json is missing, unreadable or not the shape described above."""


def default_data_dir() -> Path:
    return Path(os.environ.get("AONET_HOME") or Path.home() / ".aonet").expanduser()


def config_path(data_dir: str | os.PathLike | None = None) -> Path:
    return Path(data_dir).expanduser() / CONFIG_NAME if data_dir else default_data_dir() / CONFIG_NAME


def default_wallet_path(data_dir: str | os.PathLike | None = None) -> Path:
    return (Path(data_dir).expanduser() if data_dir else default_data_dir()) / WALLET_NAME


@dataclass
class DevnetConfig:
    mu_url: str | None = None
    cu_url: str | None = None
    su_url: str | None = None
    gateway_url: str | None = None
    scheduler: str | None = None
    mu_address: str | None = None
    modules: dict[str, str] = field(default_factory=dict)
    wallet: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def module(self, kind: str) -> str:
        """The module id for a runtime kind ("lua", "python", ...); ConfigFileError when unknown."""
        if kind not in self.modules:
            known = ", ".join(sorted(self.modules)) or "none"
            raise ConfigFileError(f"the devnet has no {kind!r} module (known: {known})")
        return self.modules[kind]

    def to_json(self) -> dict:
        out: dict[str, Any] = {"version": VERSION, **self.extra}
        for f in fields(self):
            if f.name != "extra":
                out[f.name] = getattr(self, f.name)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> "DevnetConfig":
        if not isinstance(obj, dict):
            raise ConfigFileError("devnet config must be a JSON object")
        names = {f.name for f in fields(cls)} - {"extra"}
        kw = {k: v for k, v in obj.items() if k in names}
        for k, v in kw.items():
            if k == "modules":
                if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
                    raise ConfigFileError("devnet config: 'modules' must map names to module ids")
            elif v is not None and not isinstance(v, str):
                raise ConfigFileError(f"devnet config: {k!r} must be a string")
        extra = {k: v for k, v in obj.items() if k not in names and k != "version"}
        return cls(**kw, extra=extra)

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DevnetConfig":
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError as exc:
            raise ConfigFileError(f"no devnet config at {path} (start one with `aonet up`)") from exc
        except OSError as exc:
            raise ConfigFileError(f"cannot read {path}: {exc}") from exc
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigFileError(f"{path} is not valid JSON: {exc}") from exc
