"""AO's data-protocol tags (PROTOCOL.md §2) and the builders for the items users sign.

Pure functions over values: which tags make an item a Process, Message or Module, and how to read
them. Units import these instead of spelling tag names themselves.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from .ans104 import DataItem, Tag
from .ans104.tags import normalize_tags

DATA_PROTOCOL = "ao"
VARIANT = "ao.TN.1"
SDK = "aonet"

# Module-Format values served by aonet's own runtimes (docs/abi.md)
FORMAT_WASM32 = "wasm32-wasi-ao1"
FORMAT_WASM64 = "wasm64-wasi-ao1"


def tag_value(tags: Iterable, name: str, default: str | None = None) -> str | None:
    """First value of `name` in a tag list ({name,value} dicts or Tag tuples), case-sensitive."""
    for t in tags:
        n, v = (t["name"], t["value"]) if isinstance(t, dict) else t
        if n == name:
            return v
    return default


def item_type(item: DataItem) -> str | None:
    """AO's Type of an item; the SU also accepts a lower-case `type` tag."""
    return item.tag("Type") or item.tag("type")


def is_ao_item(item: DataItem) -> bool:
    return (item.tag("Data-Protocol") or item.tag("data-protocol")) == DATA_PROTOCOL


def _with_protocol(tags: Iterable, kind: str) -> list[Tag]:
    user = [t for t in normalize_tags(tags) if t.name not in ("Data-Protocol", "Variant", "Type")]
    return [*user, Tag("Data-Protocol", DATA_PROTOCOL), Tag("Variant", VARIANT), Tag("Type", kind)]


def build_message(wallet, process_id: str, *, data: bytes | str = " ", tags: Iterable = (),
                  anchor: bytes | str | None = None) -> DataItem:
    """A signed Message to `process_id` (empty data becomes " ", as aoconnect sends it)."""
    return wallet.sign_item(data or " ", target=process_id, anchor=anchor, tags=_with_protocol(tags, "Message"))


def build_process(wallet, module_id: str, scheduler: str, *, data: bytes | str = " ", tags: Iterable = (),
                  anchor: bytes | str | None = None) -> DataItem:
    """A signed Process item: Module and Scheduler tags are required by every unit."""
    extra = [t for t in normalize_tags(tags) if t.name not in ("Module", "Scheduler")]
    return wallet.sign_item(data or " ", anchor=anchor, tags=[
        *_with_protocol(extra, "Process"), Tag("Module", module_id), Tag("Scheduler", scheduler), Tag("SDK", SDK)])


def build_module(wallet, wasm: bytes, *, module_format: str = FORMAT_WASM32, tags: Sequence = (),
                 memory_limit: str = "1-gb", compute_limit: int = 9_000_000_000_000) -> DataItem:
    """A signed Module item carrying the wasm binary."""
    base = [Tag("Data-Protocol", DATA_PROTOCOL), Tag("Variant", VARIANT), Tag("Type", "Module"),
            Tag("Module-Format", module_format), Tag("Input-Encoding", "JSON-1"), Tag("Output-Encoding", "JSON-1"),
            Tag("Content-Type", "application/wasm"), Tag("Memory-Limit", memory_limit),
            Tag("Compute-Limit", str(compute_limit))]
    names = {t.name for t in normalize_tags(tags)}
    return wallet.sign_item(wasm, tags=[*[t for t in base if t.name not in names], *normalize_tags(tags)])


def build_scheduler_location(wallet, url: str, ttl_ms: int = 3_600_000) -> DataItem:
    """The record that tells clients where the SU owned by `wallet` answers."""
    return wallet.sign_item("1984", tags=[Tag("Data-Protocol", DATA_PROTOCOL), Tag("Variant", VARIANT),
                                          Tag("Type", "Scheduler-Location"), Tag("Url", url),
                                          Tag("Time-To-Live", str(ttl_ms))])
