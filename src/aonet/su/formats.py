"""The SU's JSON shapes (PROTOCOL.md §3): snake_case keys, exactly as AO's SU serializes them.

Pure functions from records to dicts; the HTTP layer only dumps them.
"""
from __future__ import annotations

from ..ans104 import DataItem, parse
from ..blocks import format_height
from ..encoding import b64url_encode
from ..store.base import AssignmentRecord, ProcessRecord


def owner_json(item: DataItem) -> dict:
    return {"address": item.owner_address, "key": b64url_encode(item.owner)}


def anchor_json(item: DataItem, show_anchor: bool = False) -> str | None:
    if item.anchor is None:
        return None
    if show_anchor:
        return b64url_encode(item.anchor)
    return item.anchor_text


def item_json(item: DataItem, *, show_anchor: bool = False, strict_data: bool = False) -> dict:
    """A message (or assignment) node. `strict_data`: null instead of lossy text when not UTF-8."""
    try:
        data: str | None = item.data.decode("utf-8")
    except UnicodeDecodeError:
        data = None if strict_data else item.data.decode("utf-8", errors="replace")
    return {"id": item.id, "owner": owner_json(item), "data": data, "tags": item.tag_list(),
            "signature": b64url_encode(item.signature), "anchor": anchor_json(item, show_anchor),
            "target": item.target_id}


def assignment_json(item: DataItem, *, show_anchor: bool = False) -> dict:
    return {"id": item.id, "owner": owner_json(item), "tags": item.tag_list(),
            "signature": b64url_encode(item.signature), "anchor": anchor_json(item, show_anchor),
            "target": item.target_id}


def node_json(a: AssignmentRecord, *, show_anchor: bool = False) -> dict:
    """{message, assignment}: message is null for an assignment of an existing item (?assign=)."""
    message = None
    if a.with_message and a.message_raw is not None:
        message = item_json(parse(a.message_raw), show_anchor=show_anchor, strict_data=a.nonce == 0)
    return {"message": message, "assignment": assignment_json(parse(a.raw), show_anchor=show_anchor)}


def page_json(edges: list[AssignmentRecord], has_next_page: bool, *, by_nonce: bool = False,
              show_anchor: bool = False) -> dict:
    return {"page_info": {"has_next_page": has_next_page},
            "edges": [{"cursor": str(a.nonce if by_nonce else a.timestamp),
                       "node": node_json(a, show_anchor=show_anchor)} for a in edges]}


def process_json(p: ProcessRecord, *, show_anchor: bool = False) -> dict:
    item = parse(p.raw) if p.raw is not None else None
    out = {"process_id": p.id, "block": format_height(p.block_height)}
    if item is None:
        return {**out, "owner": None, "tags": [], "timestamp": p.timestamp, "data": None, "anchor": None,
                "signature": None, "target": ""}
    body = item_json(item, show_anchor=show_anchor, strict_data=True)
    return {**out, "owner": body["owner"], "tags": body["tags"], "timestamp": p.timestamp, "data": body["data"],
            "anchor": body["anchor"], "signature": body["signature"], "target": body["target"]}
