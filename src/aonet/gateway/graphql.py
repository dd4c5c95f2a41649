"""The subset of Arweave's GraphQL that AO's clients and units ask a gateway (PROTOCOL.md §7).

`transactions(ids, owners, recipients, tags, first, after, sort, block)` and
`blocks(ids, height, first, after, sort)`, plus `transaction(id)` / `block(id|height)`. The schema
is Arweave's own shape (fields we cannot fill, like fees, answer zero), so any query aoconnect,
scheduler-utils or the CU sends validates; graphql-core parses and executes it. Parsed documents
are cached by query text: clients send the same few queries again and again.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

from graphql import (GraphQLError, GraphQLSchema, build_schema, execute, parse, validate)

from ..blocks import BlockClock
from ..encoding import b64url_encode
from ..store.base import ItemRecord, Store

SDL = """
type Query {
  transaction(id: ID!): Transaction
  transactions(ids: [ID!], owners: [String!], recipients: [String!], tags: [TagFilter!],
               bundledIn: [ID!], block: BlockFilter, first: Int = 10, after: String,
               sort: SortOrder = HEIGHT_DESC, ingested_at: IngestedFilter): TransactionConnection!
  block(id: String, height: Int): Block
  blocks(ids: [ID!], height: BlockFilter, first: Int = 10, after: String,
         sort: SortOrder = HEIGHT_DESC): BlockConnection!
}
enum SortOrder { HEIGHT_ASC HEIGHT_DESC INGESTED_AT_ASC INGESTED_AT_DESC }
enum TagOperator { EQ NEQ }
enum TagMatch { EXACT WILDCARD FUZZY_AND FUZZY_OR }
input TagFilter { name: String!, values: [String!]!, op: TagOperator = EQ, match: TagMatch = EXACT }
input BlockFilter { min: Int, max: Int }
input IngestedFilter { min: Int, max: Int }
type PageInfo { hasNextPage: Boolean! }
type TransactionConnection { pageInfo: PageInfo!, edges: [TransactionEdge!]!, count: String }
type TransactionEdge { cursor: String!, node: Transaction! }
type Transaction {
  id: ID!
  anchor: String!
  signature: String!
  recipient: String!
  owner: Owner!
  fee: Amount!
  quantity: Amount!
  data: MetaData!
  tags: [Tag!]!
  block: Block
  parent: Parent
  bundledIn: Bundle
  ingested_at: Int
}
type Owner { address: String!, key: String! }
type Amount { winston: String!, ar: String! }
type MetaData { size: String!, type: String }
type Tag { name: String!, value: String! }
type Parent { id: ID! }
type Bundle { id: ID! }
type Block { id: ID!, timestamp: Int!, height: Int!, previous: ID }
type BlockConnection { pageInfo: PageInfo!, edges: [BlockEdge!]! }
type BlockEdge { cursor: String!, node: Block! }
"""

MAX_FIRST = 1000
ZERO = {"winston": "0", "ar": "0.000000000000"}


def _block_json(clock: BlockClock, height: int) -> dict:
    b = clock.block(height)
    return {"id": b.id, "height": b.height, "timestamp": b.timestamp, "previous": b.previous or ""}


class TxNode:
    """A Transaction node, decoded lazily from the stored item (most queries read few fields)."""

    def __init__(self, rec: ItemRecord, clock: BlockClock):
        self.rec, self.clock = rec, clock
        self._item = None

    @property
    def item(self):
        if self._item is None:
            self._item = self.rec.item()
        return self._item

    @property
    def id(self) -> str:
        return self.rec.id

    @property
    def anchor(self) -> str:
        a = self.item.anchor
        return "" if a is None else (self.item.anchor_text or b64url_encode(a))

    @property
    def signature(self) -> str:
        return b64url_encode(self.item.signature)

    @property
    def recipient(self) -> str:
        return self.rec.target or ""

    @property
    def owner(self) -> dict:
        return {"address": self.rec.owner, "key": b64url_encode(self.item.owner)}

    fee = quantity = property(lambda self: ZERO)

    @property
    def data(self) -> dict:
        return {"size": str(len(self.item.data)), "type": self.item.tag("Content-Type")}

    @property
    def tags(self) -> list[dict]:
        return self.item.tag_list()

    @property
    def block(self) -> dict:
        return _block_json(self.clock, self.rec.height)

    parent = bundledIn = property(lambda self: None)

    @property
    def ingested_at(self) -> int:
        return self.rec.timestamp // 1000


def _first(first: int | None) -> int:
    if first is None:
        return 10
    if first < 0:
        raise GraphQLError("first must not be negative")
    return min(first, MAX_FIRST)


class Root:
    """Query resolvers over a Store and a BlockClock."""

    def __init__(self, store: Store, clock: BlockClock):
        self.store, self.clock = store, clock

    def transaction(self, info, id: str):
        rec = self.store.get_item(id)
        return TxNode(rec, self.clock) if rec else None

    def transactions(self, info, ids=None, owners=None, recipients=None, tags=None, bundledIn=None, block=None,
                     first=10, after=None, sort="HEIGHT_DESC", ingested_at=None):
        if bundledIn:  # nothing on a devnet is bundled inside another item
            return {"pageInfo": {"hasNextPage": False}, "edges": [], "count": "0"}
        tag_filter = []
        for t in tags or []:
            if t.get("op", "EQ") == "NEQ":
                raise GraphQLError("tag filter op NEQ is not supported by the aonet gateway")
            tag_filter.append((t["name"], list(t["values"])))
        order = "HEIGHT_ASC" if sort in ("HEIGHT_ASC", "INGESTED_AT_ASC") else "HEIGHT_DESC"
        want = _first(first)
        lo = (block or {}).get("min")
        hi = (block or {}).get("max")
        edges: list[dict] = []
        has_next = False
        cursor = after
        query = dict(ids=ids or None, owners=owners or None, recipients=recipients or None,
                     tags=tag_filter or None, sort=order)
        try:
            if lo is None and hi is None:
                page = self.store.query_items(first=max(want, 1), after=cursor, **query)
                edges = [{"cursor": r.cursor, "node": TxNode(r, self.clock)} for r in page.items[:want]]
                has_next = page.has_next_page or len(page.items) > want
            else:   # the store has no block filter: page through and filter here
                while not has_next:
                    page = self.store.query_items(first=max(want, 100), after=cursor, **query)
                    for rec in page.items:
                        cursor = rec.cursor
                        if (lo is not None and rec.height < lo) or (hi is not None and rec.height > hi):
                            continue
                        if len(edges) == want:
                            has_next = True
                            break
                        edges.append({"cursor": rec.cursor, "node": TxNode(rec, self.clock)})
                    if not page.has_next_page or not page.items:
                        break
        except ValueError as exc:   # bad cursor, bad id
            raise GraphQLError(str(exc)) from exc
        return {"pageInfo": {"hasNextPage": has_next}, "edges": edges, "count": str(len(edges))}

    def block(self, info, id=None, height=None):
        current = self.clock.current_height()
        if height is not None:
            return _block_json(self.clock, height) if 0 <= height <= current else None
        if id is not None:  # ids are a hash of the height: look back from the tip
            for h in range(current, max(-1, current - 100_000), -1):
                if self.clock.block_id(h) == id:
                    return _block_json(self.clock, h)
        return None

    def blocks(self, info, ids=None, height=None, first=10, after=None, sort="HEIGHT_DESC"):
        current = self.clock.current_height()
        lo = max(0, (height or {}).get("min") or 0)
        hi = min(current, (height or {}).get("max") if (height or {}).get("max") is not None else current)
        want = _first(first)
        asc = sort in ("HEIGHT_ASC", "INGESTED_AT_ASC")
        if after:
            try:
                a = int(after)
            except ValueError as exc:
                raise GraphQLError(f"invalid cursor {after[:40]!r}") from exc
            lo, hi = (max(lo, a + 1), hi) if asc else (lo, min(hi, a - 1))
        heights = range(lo, hi + 1) if asc else range(hi, lo - 1, -1)
        if ids:
            wanted = set(ids)
            heights = [h for h in heights if self.clock.block_id(h) in wanted]
        chosen = list(heights[:want + 1]) if not ids else heights[:want + 1]
        edges = [{"cursor": str(h), "node": _block_json(self.clock, h)} for h in chosen[:want]]
        return {"pageInfo": {"hasNextPage": len(chosen) > want}, "edges": edges}


class GraphQLService:
    """Parse (cached), validate and execute a query against a store."""

    def __init__(self, store: Store, clock: BlockClock, cache_size: int = 256):
        self.schema: GraphQLSchema = build_schema(SDL)
        self.root = Root(store, clock)
        self._docs: OrderedDict[str, Any] = OrderedDict()
        self.cache_size = cache_size

    def _document(self, query: str):
        doc = self._docs.get(query)
        if doc is not None:
            self._docs.move_to_end(query)
            return doc, []
        try:
            doc = parse(query)
        except GraphQLError as exc:
            return None, [exc]
        errors = validate(self.schema, doc)
        if errors:
            return None, errors
        self._docs[query] = doc
        if len(self._docs) > self.cache_size:
            self._docs.popitem(last=False)
        return doc, []

    def run(self, query: Any, variables: Any = None, operation: str | None = None) -> dict:
        """A GraphQL response object: {"data": ...} and/or {"errors": [...]}."""
        if not isinstance(query, str) or not query.strip():
            return {"errors": [{"message": "request body needs a 'query' string"}]}
        if variables is not None and not isinstance(variables, dict):
            return {"errors": [{"message": "'variables' must be an object"}]}
        doc, errors = self._document(query)
        if errors:
            return {"errors": [e.formatted for e in errors]}
        result = execute(self.schema, doc, root_value=self.root, variable_values=variables,
                         operation_name=operation)
        out: dict = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return out
