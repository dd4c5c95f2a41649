"""What the sync and async clients share: endpoints, the wallet, turning httpx into core effects."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import httpx

from ..wallet import Wallet, WalletError
from .core import Endpoints, Request, Response
from .errors import ConfigError, UnitUnreachable

ENV = {"mu_url": "MU_URL", "cu_url": "CU_URL", "su_url": "SU_URL", "gateway_url": "GATEWAY_URL"}


def resolve_wallet(wallet: Any) -> Wallet | None:
    """A Wallet, a path to a key file, a JWK dict, or None (read-only client)."""
    if wallet is None or isinstance(wallet, Wallet):
        return wallet
    try:
        if isinstance(wallet, (str, os.PathLike)):
            return Wallet.load(Path(wallet).expanduser())
        if isinstance(wallet, Mapping):
            return Wallet.from_json(dict(wallet))
    except FileNotFoundError as exc:
        raise ConfigError(f"wallet file not found: {wallet}") from exc
    except (WalletError, OSError) as exc:
        raise ConfigError(f"cannot use wallet {wallet!s:.80}: {exc}") from exc
    if hasattr(wallet, "sign_item") and hasattr(wallet, "address"):
        return wallet            # any object shaped like a Wallet (e.g. a hardware signer)
    raise ConfigError(f"wallet must be a Wallet, a key-file path or a JWK dict, not {type(wallet).__name__}")


def resolve_endpoints(mu_url: str | None, cu_url: str | None, su_url: str | None,
                      gateway_url: str | None) -> Endpoints:
    """Explicit URLs win; otherwise the environment variables aoconnect reads (MU_URL, CU_URL, ...)."""
    given = {"mu_url": mu_url, "cu_url": cu_url, "su_url": su_url, "gateway_url": gateway_url}
    urls = {k: (v or os.environ.get(ENV[k]) or None) for k, v in given.items()}
    for k, v in urls.items():
        if v is not None and not v.startswith(("http://", "https://")):
            raise ConfigError(f"{k} must be an http(s) URL, got {v!r}")
    return Endpoints(**urls)


def to_httpx(req: Request) -> dict:
    kw: dict[str, Any] = {"params": dict(req.params) or None, "headers": dict(req.headers) or None}
    if req.content is not None:
        kw["content"] = req.content
    elif req.json is not None:
        kw["json"] = req.json
    return kw


def from_httpx(resp: httpx.Response) -> Response:
    return Response(resp.status_code, dict(resp.headers), resp.content, str(resp.url))


def unreachable(req: Request, exc: httpx.HTTPError) -> UnitUnreachable:
    reason = str(exc) or type(exc).__name__
    return UnitUnreachable(req.unit, req.url, reason)
