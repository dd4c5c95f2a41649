"""aonet: the AO actor-oriented computer in Python.

The public API, imported lazily so that `import aonet` stays cheap:

    from aonet import connect, Wallet, DataItem
    ao = connect(mu_url=..., cu_url=..., wallet="wallet.json")
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # data items and keys
    "DataItem": "aonet.ans104", "Tag": "aonet.ans104", "ANS104Error": "aonet.ans104",
    "read_bundle": "aonet.ans104", "write_bundle": "aonet.ans104", "deep_hash": "aonet.ans104",
    "Wallet": "aonet.wallet",
    "build_message": "aonet.protocol", "build_process": "aonet.protocol", "build_module": "aonet.protocol",
    # the SDK
    "connect": "aonet.client", "connect_async": "aonet.client", "Client": "aonet.client",
    "AsyncClient": "aonet.client", "Result": "aonet.client", "ResultsPage": "aonet.client",
    "ProcessInfo": "aonet.client", "Scheduled": "aonet.client", "Trace": "aonet.client", "Sent": "aonet.client",
    "AoError": "aonet.client", "UnitError": "aonet.client", "UnitUnreachable": "aonet.client",
    "ConfigError": "aonet.client", "CascadeTimeout": "aonet.client", "RateLimited": "aonet.client",
    "ProtocolError": "aonet.client",
    "DevnetConfig": "aonet.config",
    # units and the devnet
    "start_devnet": "aonet.node", "NodeConfig": "aonet.node",
    "create_su_app": "aonet.su", "create_cu_app": "aonet.cu", "create_mu_app": "aonet.mu",
    "create_gateway_app": "aonet.gateway", "SQLiteStore": "aonet.store",
    # runtimes
    "WasmRuntime": "aonet.vm", "Limits": "aonet.vm",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aonet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
