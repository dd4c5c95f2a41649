"""Where the CU reads from: the SU (schedule), a module source (Module items and assigned items),
and a block source (block-based crons). Thin I/O shells over httpx or an aonet store; every failure
becomes a typed `CUError` (404 for unknown ids, 502 for an unreachable or confused upstream).

All classes here are picklable (they hold URLs or a store path), so worker processes can rebuild them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Protocol, Sequence

import httpx

from ..blocks import BlockClock
from ..encoding import b64url_encode
from .cron import Block
from .errors import CUError, NotFound, UpstreamError

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def _trim(url: str) -> str:
    return url.rstrip("/")


class _Http:
    """A lazily created httpx.Client (so the object pickles as its URL)."""

    def __init__(self, url: str):
        self.url = _trim(url)
        self._client: httpx.Client | None = None

    def __getstate__(self):
        return {"url": self.url}

    def __setstate__(self, state):
        self.url, self._client = state["url"], None

    @property
    def http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=TIMEOUT)
        return self._client

    def _get(self, path: str, what: str, params: Mapping | None = None, not_found=(404,)) -> httpx.Response:
        try:
            r = self.http.get(self.url + path, params=params)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{what}: cannot reach {self.url}: {exc}") from None
        if r.status_code in not_found:
            raise NotFound(f"{what}: not found")
        if r.status_code != 200:
            raise UpstreamError(f"{what}: {self.url} answered {r.status_code}: {r.text[:200]}")
        return r

    def _json(self, r: httpx.Response, what: str):
        try:
            return r.json()
        except ValueError:
            raise UpstreamError(f"{what}: {self.url} answered something that is not JSON") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# ---- the SU ------------------------------------------------------------------------------------
class SUClient(_Http):
    """The SU routes the CU reads (PROTOCOL.md §3)."""

    def process(self, process_id: str) -> dict:
        r = self._get(f"/processes/{process_id}", f"process {process_id}", not_found=(404, 400))
        return self._json(r, f"process {process_id}")

    def message(self, message_id: str, process_id: str) -> dict:
        """One `{message, assignment}` node by message (or assignment) id."""
        what = f"message {message_id} of process {process_id}"
        r = self._get(f"/{message_id}", what, {"process-id": process_id}, not_found=(404, 400))
        return self._json(r, what)

    def page(self, process_id: str, *, from_nonce: int | None = None, to_nonce: int | None = None,
             from_ts: int | None = None, to_ts: int | None = None, limit: int = 1000) -> dict:
        params: dict = {"process-id": process_id, "limit": str(limit)}
        for key, value in (("from-nonce", from_nonce), ("to-nonce", to_nonce), ("from", from_ts), ("to", to_ts)):
            if value is not None:
                params[key] = str(value)
        what = f"schedule of process {process_id}"
        page = self._json(self._get(f"/{process_id}", what, params, not_found=(404,)), what)
        if not isinstance(page, Mapping) or not isinstance(page.get("edges"), list):
            raise UpstreamError(f"{what}: the SU page has no edges")
        return page

    def nodes(self, process_id: str, *, after_nonce: int, to_nonce: int | None = None, to_ts: int | None = None,
              limit: int = 1000) -> Iterator[dict]:
        """Nodes with after_nonce < nonce (<= to_nonce) (and timestamp <= to_ts), in nonce order.

        Pages by `from-nonce` (exclusive; -1 = from the Process itself), so messages that share a
        millisecond are never skipped; anything at or below a nonce already seen is dropped.
        """
        last = after_nonce
        while True:
            page = self.page(process_id, from_nonce=last, to_nonce=to_nonce, to_ts=to_ts, limit=limit)
            edges = page["edges"]
            new = 0
            for e in edges:
                node = e.get("node") if isinstance(e, Mapping) else None
                nonce = _node_nonce(node)
                if nonce is None:
                    raise UpstreamError(f"schedule of {process_id}: a node without a Nonce")
                if nonce <= last:
                    continue
                last = nonce
                new += 1
                yield node
            more = bool((page.get("page_info") or {}).get("has_next_page"))
            if not new or not more:
                return

    def timestamp(self) -> tuple[int, int]:
        """The SU's clock: (ms, block height)."""
        obj = self._json(self._get("/timestamp", "SU timestamp"), "SU timestamp")
        try:
            return int(obj["timestamp"]), int(obj.get("block_height") or 0)
        except (KeyError, TypeError, ValueError):
            raise UpstreamError("SU /timestamp answered an unexpected shape") from None


def _node_nonce(node) -> int | None:
    try:
        for t in node["assignment"]["tags"]:
            if t["name"] == "Nonce":
                return int(t["value"])
    except (KeyError, TypeError, ValueError):
        return None
    return None


# ---- modules and assigned items ------------------------------------------------------------------
@dataclass(frozen=True)
class SourceItem:
    id: str
    owner: str                    # address
    tags: list[dict]
    data: bytes = field(repr=False)
    owner_key: str = ""
    target: str = ""
    anchor: str | None = None
    signature: str | None = None


class ModuleSource(Protocol):
    def get(self, item_id: str) -> SourceItem:
        """Tags, owner and bytes of an item (a Module, or an item assigned to a process). NotFound if absent."""


_TX_QUERY = """query($ids: [ID!]) { transactions(ids: $ids, first: 1) { edges { node {
  id anchor signature recipient owner { address key } tags { name value } } } } }"""


class GatewayModuleSource(_Http):
    """Reads the local gateway: GraphQL `transactions(ids:[...])` for meta, `GET /raw/{id}` for bytes."""

    def __init__(self, url: str):
        super().__init__(url)
        self._cache: dict[str, SourceItem] = {}

    def __setstate__(self, state):
        super().__setstate__(state)
        self._cache = {}

    def get(self, item_id: str) -> SourceItem:
        if item_id in self._cache:
            return self._cache[item_id]
        what = f"item {item_id}"
        try:
            r = self.http.post(self.url + "/graphql", json={"query": _TX_QUERY, "variables": {"ids": [item_id]}})
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{what}: cannot reach the gateway {self.url}: {exc}") from None
        if r.status_code != 200:
            raise UpstreamError(f"{what}: gateway GraphQL answered {r.status_code}: {r.text[:200]}")
        body = self._json(r, what)
        try:
            edges = body["data"]["transactions"]["edges"]
        except (KeyError, TypeError):
            raise UpstreamError(f"{what}: gateway GraphQL answered {str(body)[:200]}") from None
        if not edges:
            raise NotFound(f"{what} not found on the gateway")
        node = edges[0]["node"]
        data = self._get(f"/raw/{item_id}", what).content
        item = SourceItem(id=node["id"], owner=node["owner"]["address"], owner_key=node["owner"].get("key", ""),
                          tags=[{"name": t["name"], "value": t["value"]} for t in node["tags"]], data=data,
                          target=node.get("recipient") or "", anchor=node.get("anchor") or None,
                          signature=node.get("signature"))
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[item_id] = item
        return item


def item_from_dataitem(item) -> SourceItem:
    """A SourceItem from an aonet DataItem."""
    return SourceItem(id=item.id, owner=item.owner_address, owner_key=b64url_encode(item.owner),
                      tags=item.tag_list(), data=item.data, target=item.target_id,
                      anchor=item.anchor_text, signature=b64url_encode(item.signature))


class StoreModuleSource:
    """Reads an aonet store directly (`store.get_item(id)`): one-process devnets and tests.

    Pickles as the store's path; a worker process reopens it read-only in spirit (it only reads).
    """

    def __init__(self, store):
        self.store = store
        self._path = getattr(store, "path", None)

    def __getstate__(self):
        if self._path is None:
            raise TypeError("this store has no path; use workers=0 or a GatewayModuleSource")
        return {"path": str(self._path)}

    def __setstate__(self, state):
        from ..store import SQLiteStore
        self._path = state["path"]
        self.store = SQLiteStore(self._path, synchronous="NORMAL")

    def get(self, item_id: str) -> SourceItem:
        try:
            rec = self.store.get_item(item_id)
        except CUError:
            raise
        except Exception as exc:  # noqa: BLE001 - a store failure is an upstream failure here
            raise UpstreamError(f"item {item_id}: store read failed: {exc}") from None
        if rec is None:
            raise NotFound(f"item {item_id} not found in the store")
        return item_from_dataitem(rec.item())


class StaticModuleSource:
    """Items handed over directly (a dict of DataItems): tests and embedded use."""

    def __init__(self, items=()):
        self.items = {}
        for it in items:
            self.add(it)

    def add(self, item) -> SourceItem:
        si = item if isinstance(item, SourceItem) else item_from_dataitem(item)
        self.items[si.id] = si
        return si

    def get(self, item_id: str) -> SourceItem:
        try:
            return self.items[item_id]
        except KeyError:
            raise NotFound(f"item {item_id} not found") from None


# ---- blocks ------------------------------------------------------------------------------------
class BlockSource(Protocol):
    def blocks(self, after_ms: int, before_ms: int) -> Sequence[Block]:
        """Blocks with after_ms < timestamp (ms, Arweave seconds x 1000) < before_ms, ascending height."""


@dataclass(frozen=True)
class ClockBlockSource:
    """Blocks from aonet's BlockClock: the same pure function of time the SU and gateway use."""
    clock: BlockClock = BlockClock()
    max_blocks: int = 1_000_000

    def blocks(self, after_ms: int, before_ms: int) -> list[Block]:
        if before_ms <= after_ms:
            return []
        lo, hi = self.clock.height_at(after_ms), self.clock.height_at(before_ms) + 1
        if hi - lo > self.max_blocks:
            raise UpstreamError(f"{hi - lo} blocks between {after_ms} and {before_ms}: too many for block crons")
        out = []
        for h in range(lo, hi + 1):
            ts = self.clock.start_ms(h) // 1000 * 1000
            if after_ms < ts < before_ms:
                out.append(Block(h, ts))
        return out


def default_cache_dir() -> str:
    return os.environ.get("AONET_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "aonet")
