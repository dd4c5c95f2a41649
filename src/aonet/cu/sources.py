"""Where the CU reads from: the SU (schedule), a module source (Module items and assigned items),
and a block source (block-based crons). Thin I/O shells over httpx or an aonet store; every failure
becomes a typed `CUError` (404 for unknown ids, 502 for an unreachable or confused upstream).

All classes here are picklable (they hold URLs or a store path), so worker processes can rebuild them.
"""
from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Protocol, Sequence
from urllib.parse import urlencode, urlsplit

import httpx

from ..blocks import BlockClock
from ..encoding import b64url_encode
from .cron import Block
from .errors import CUError, NotFound, UpstreamError

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
FIRST_PAGE = 64            # nodes in the first SU page of a prefetching read (see SUClient.pages)


def _trim(url: str) -> str:
    return url.rstrip("/")


class _Http:
    """A lazily created httpx.Client (so the object pickles as its URL)."""

    def __init__(self, url: str):
        self.url = _trim(url)
        self._client: httpx.Client | None = None
        self._pipe: PipelinedGet | None = None

    def __getstate__(self):
        return {"url": self.url}

    def __setstate__(self, state):
        self.url, self._client, self._pipe = state["url"], None, None

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
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
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
        r = self._get(f"/{process_id}", f"schedule of process {process_id}",
                      _page_params(process_id, from_nonce, to_nonce, from_ts, to_ts, limit), not_found=(404,))
        return _page_decode(r.status_code, r.content, process_id, self.url)

    def nodes(self, process_id: str, *, after_nonce: int, to_nonce: int | None = None, to_ts: int | None = None,
              limit: int = 1000, prefetch: bool = True) -> Iterator[dict]:
        """Nodes with after_nonce < nonce (<= to_nonce) (and timestamp <= to_ts), in nonce order.

        Pages by `from-nonce` (exclusive; -1 = from the Process itself), so messages that share a
        millisecond are never skipped; anything at or below a nonce already seen is dropped.
        `prefetch`: see `pages`.
        """
        for nodes in self.pages(process_id, after_nonce=after_nonce, to_nonce=to_nonce, to_ts=to_ts, limit=limit,
                                prefetch=prefetch):
            yield from nodes

    def pages(self, process_id: str, *, after_nonce: int, to_nonce: int | None = None, to_ts: int | None = None,
              limit: int = 1000, prefetch: bool = True) -> Iterator[list[dict]]:
        """The nodes of `nodes()`, one list per SU page.

        With `prefetch` the request for page k+1 is *sent* as soon as page k is decoded and its
        answer read only when the caller asks for page k+1, so the SU renders it (in its own
        process) while the caller evaluates page k — without a second thread in the CU (see
        `PipelinedGet` for why not a thread).
        """
        last = after_nonce
        reader = self._page_reader(process_id)

        def send(after: int, size: int = limit) -> None:
            reader.send(after, to_nonce, to_ts, size)

        try:
            # a small first page: evaluation starts after the SU rendered 64 nodes, not 1000, and the
            # first full page is rendered meanwhile
            send(last, min(limit, FIRST_PAGE) if prefetch else limit)
            while True:
                page = reader.receive()
                fresh = []
                for e in page["edges"]:
                    node = e.get("node") if isinstance(e, dict) else None
                    nonce = _node_nonce(node)
                    if nonce is None:
                        raise UpstreamError(f"schedule of {process_id}: a node without a Nonce")
                    if nonce <= last:
                        continue
                    last = nonce
                    fresh.append(node)
                info = page.get("page_info")
                more = bool(fresh) and isinstance(info, dict) and bool(info.get("has_next_page"))
                if more and prefetch:
                    send(last)
                if fresh:
                    yield fresh
                if not more:
                    return
                if not prefetch:
                    send(last)
        finally:
            reader.abandon()        # a page sent but no longer wanted (the caller stopped early)

    def _page_reader(self, process_id: str) -> "PageReader":
        """Where `pages` gets schedule pages from: the SU over HTTP (a subclass may read it in-process)."""
        return _HttpPageReader(self._pipeline(), process_id, self.url)

    def _pipeline(self) -> "PipelinedGet":
        if self._pipe is None:
            self._pipe = PipelinedGet(self.url)
        return self._pipe

    def timestamp(self) -> tuple[int, int]:
        """The SU's clock: (ms, block height)."""
        obj = self._json(self._get("/timestamp", "SU timestamp"), "SU timestamp")
        try:
            return int(obj["timestamp"]), int(obj.get("block_height") or 0)
        except (KeyError, TypeError, ValueError):
            raise UpstreamError("SU /timestamp answered an unexpected shape") from None


class PageReader(Protocol):
    """One schedule page at a time: `send` asks for it, `receive` returns the decoded page."""

    def send(self, after_nonce: int, to_nonce: int | None, to_ts: int | None, limit: int) -> None: ...

    def receive(self) -> dict: ...

    def abandon(self) -> None: ...


class _HttpPageReader:
    """Pages over the SU's `GET /{process}?from-nonce=` on a pipelined keep-alive connection."""

    def __init__(self, pipe: "PipelinedGet", process_id: str, url: str):
        self.pipe, self.process_id, self.url = pipe, process_id, url

    def send(self, after_nonce: int, to_nonce: int | None, to_ts: int | None, limit: int) -> None:
        qs = urlencode(_page_params(self.process_id, after_nonce, to_nonce, None, to_ts, limit))
        self.pipe.send(f"/{self.process_id}?{qs}", f"schedule of process {self.process_id}")

    def receive(self) -> dict:
        status, body = self.pipe.receive()
        return _page_decode(status, body, self.process_id, self.url)

    def abandon(self) -> None:
        self.pipe.abandon()


def _node_nonce(node) -> int | None:
    try:
        for t in node["assignment"]["tags"]:
            if t["name"] == "Nonce":
                return int(t["value"])
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _page_params(process_id: str, from_nonce: int | None, to_nonce: int | None, from_ts: int | None,
                 to_ts: int | None, limit: int) -> dict:
    params: dict = {"process-id": process_id, "limit": str(limit)}
    for key, value in (("from-nonce", from_nonce), ("to-nonce", to_nonce), ("from", from_ts), ("to", to_ts)):
        if value is not None:
            params[key] = str(value)
    return params


def _page_decode(status: int, body: bytes, process_id: str, url: str) -> dict:
    what = f"schedule of process {process_id}"
    if status == 404:
        raise NotFound(f"{what}: not found")
    if status != 200:
        raise UpstreamError(f"{what}: {url} answered {status}: {body[:200].decode('utf-8', 'replace')}")
    try:
        page = json.loads(body)
    except ValueError:
        raise UpstreamError(f"{what}: {url} answered something that is not JSON") from None
    if not isinstance(page, dict) or not isinstance(page.get("edges"), list):
        raise UpstreamError(f"{what}: the SU page has no edges")
    return page


class PipelinedGet:
    """One keep-alive HTTP/1.1 connection on which a GET is *sent* now and its answer *read* later.

    Why: the SU renders a schedule page (~70 µs of its CPU per node) only once it has the request.
    Sending the request for page k+1 before evaluating page k lets the SU work, in its own process,
    while the CU evaluates. A helper thread doing the fetch was tried and measured slower on a busy
    2-core host: every wasmtime call releases and re-takes the GIL, and a socket-reading thread
    next to it made each message ~2x slower. Here nothing runs concurrently inside the CU.
    One request at a time; a stale keep-alive connection (closed by the server while idle) is
    replaced and the GET sent again, once.
    """

    def __init__(self, base_url: str, timeout: float = 60.0):
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.base_url = base_url
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._sent: tuple[str, str] | None = None         # (path, what) of the request in flight
        self._fresh = False                               # the connection has carried no request yet

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout)
            self._fresh = True
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._sent = None

    def abandon(self) -> None:
        """Forget a request in flight (closing the connection: its answer is never read)."""
        if self._sent is not None:
            self.close()

    def send(self, path: str, what: str) -> None:
        if self._sent is not None:      # an earlier caller stopped without reading its answer
            self.close()
        for attempt in (0, 1):
            conn = self._connect()
            try:
                conn.request("GET", self.prefix + path, headers={"Accept": "application/json"})
                self._sent = (path, what)
                return
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt:
                    raise UpstreamError(f"{what}: cannot reach {self.base_url}: {exc}") from None

    def receive(self) -> tuple[int, bytes]:
        if self._sent is None:
            raise RuntimeError("PipelinedGet: nothing was sent")
        path, what = self._sent
        fresh = self._fresh
        try:
            return self._read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if fresh:               # a new connection failed: the server is gone, not a stale keep-alive
                raise UpstreamError(f"{what}: cannot reach {self.base_url}: {exc}") from None
        self.send(path, what)
        try:
            return self._read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise UpstreamError(f"{what}: cannot reach {self.base_url}: {exc}") from None

    def _read(self) -> tuple[int, bytes]:
        conn = self._conn
        r = conn.getresponse()
        body = r.read()
        self._sent, self._fresh = None, False
        if r.will_close:
            self.close()
        return r.status, body


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
