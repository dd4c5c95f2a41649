"""Typed views of what the units answer. Each keeps the unit's JSON in `.raw`.

Parsing is strict about shape (a missing `edges` is a ProtocolError) and lenient about extras, so a
newer unit that adds fields still works.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from ..ans104 import Tag
from .errors import ProtocolError


def _tags(value: Any, where: str) -> tuple[Tag, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError(f"{where}: Tags must be a list, got {type(value).__name__}")
    out = []
    for t in value:
        if not isinstance(t, Mapping) or "name" not in t or "value" not in t:
            raise ProtocolError(f"{where}: a tag must be {{name, value}}, got {t!r}")
        out.append(Tag(str(t["name"]), t["value"] if isinstance(t["value"], str) else json.dumps(t["value"])))
    return tuple(out)


def _first(tags: Sequence[Tag], name: str, default: str | None) -> str | None:
    for t in tags:
        if t.name == name:
            return t.value
    return default


def _obj(value: Any, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class OutboxMessage:
    """A message a process asked to send (Result.Messages[i])."""
    target: str
    data: Any
    anchor: str | None
    tags: tuple[Tag, ...]
    raw: Mapping = field(repr=False, compare=False)

    def tag(self, name: str, default: str | None = None) -> str | None:
        return _first(self.tags, name, default)


@dataclass(frozen=True)
class OutboxSpawn:
    """A process a process asked to spawn (Result.Spawns[i])."""
    data: Any
    anchor: str | None
    tags: tuple[Tag, ...]
    raw: Mapping = field(repr=False, compare=False)

    def tag(self, name: str, default: str | None = None) -> str | None:
        return _first(self.tags, name, default)


@dataclass(frozen=True)
class OutboxAssignment:
    """An assignment of an existing message to other processes (Result.Assignments[i])."""
    processes: tuple[str, ...]
    message: str
    raw: Mapping = field(repr=False, compare=False)


@dataclass(frozen=True)
class Result:
    """One evaluation result: what `GET /result`, `/results` edges and `/dry-run` return."""
    output: Any
    messages: tuple[OutboxMessage, ...]
    spawns: tuple[OutboxSpawn, ...]
    assignments: tuple[OutboxAssignment, ...]
    error: Any
    gas_used: int | None
    raw: Mapping = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error in (None, "", False)

    @property
    def text(self) -> str:
        """Output as a person reads it: aos wraps printed text as {"data": ..., "prompt": ...}."""
        out = self.output
        if isinstance(out, Mapping):
            data = out.get("data", out.get("Data"))
            if data is None:
                return json.dumps(out)
            out = data
        if out is None:
            return ""
        if isinstance(out, (dict, list)):
            return json.dumps(out)
        return str(out)

    @property
    def prompt(self) -> str | None:
        out = self.output
        return out.get("prompt") if isinstance(out, Mapping) and isinstance(out.get("prompt"), str) else None

    @classmethod
    def from_json(cls, obj: Any) -> "Result":
        obj = _obj(obj, "result")
        msgs, spawns, assigns = ([] if obj.get(k) is None else obj[k] for k in ("Messages", "Spawns", "Assignments"))
        for name, v in (("Messages", msgs), ("Spawns", spawns), ("Assignments", assigns)):
            if not isinstance(v, list):
                raise ProtocolError(f"result: {name} must be a list, got {type(v).__name__}")
        try:
            messages = tuple(OutboxMessage(str(m.get("Target") or ""), m.get("Data"), m.get("Anchor"),
                                           _tags(m.get("Tags"), "Messages"), m) for m in map(dict, msgs))
            spawn_list = tuple(OutboxSpawn(s.get("Data"), s.get("Anchor"), _tags(s.get("Tags"), "Spawns"), s)
                               for s in map(dict, spawns))
            assignments = tuple(OutboxAssignment(tuple(a.get("Processes") or ()), str(a.get("Message") or ""), a)
                                for a in map(dict, assigns))
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"result: malformed outbox entry: {exc}") from exc
        gas = obj.get("GasUsed")
        return cls(obj.get("Output", ""), messages, spawn_list, assignments, obj.get("Error"),
                   gas if isinstance(gas, int) else None, obj)


@dataclass(frozen=True)
class ResultEdge:
    cursor: str
    result: Result


@dataclass(frozen=True)
class ResultsPage:
    """A page of `GET /results/{process}`; iterate it for the edges."""
    edges: tuple[ResultEdge, ...]
    has_next_page: bool
    raw: Mapping = field(repr=False, compare=False)

    def __iter__(self) -> Iterator[ResultEdge]:
        return iter(self.edges)

    def __len__(self) -> int:
        return len(self.edges)

    @property
    def last_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None

    @classmethod
    def from_json(cls, obj: Any) -> "ResultsPage":
        obj = _obj(obj, "results")
        edges = obj.get("edges")
        if not isinstance(edges, list):
            raise ProtocolError("results: 'edges' must be a list")
        out = []
        for e in edges:
            e = _obj(e, "results edge")
            out.append(ResultEdge(str(e.get("cursor", "")), Result.from_json(e.get("node"))))
        info = obj.get("pageInfo") or {}
        return cls(tuple(out), bool(info.get("hasNextPage")), obj)


@dataclass(frozen=True)
class Owner:
    address: str
    key: str | None


def _owner(value: Any) -> Owner:
    if isinstance(value, Mapping):
        return Owner(str(value.get("address", "")), value.get("key"))
    return Owner(str(value or ""), None)


@dataclass(frozen=True)
class ProcessInfo:
    """`GET {su}/processes/{id}`: the process item as its SU stored it."""
    process_id: str
    owner: Owner
    tags: tuple[Tag, ...]
    timestamp: int | None
    block: str | None
    data: Any
    anchor: str | None
    signature: str | None
    raw: Mapping = field(repr=False, compare=False)

    def tag(self, name: str, default: str | None = None) -> str | None:
        return _first(self.tags, name, default)

    @property
    def module(self) -> str | None:
        return self.tag("Module")

    @property
    def scheduler(self) -> str | None:
        return self.tag("Scheduler")

    @classmethod
    def from_json(cls, obj: Any) -> "ProcessInfo":
        obj = _obj(obj, "process")
        if "process_id" not in obj:
            raise ProtocolError("process: missing 'process_id'")
        ts = obj.get("timestamp")
        return cls(str(obj["process_id"]), _owner(obj.get("owner")), _tags(obj.get("tags"), "process"),
                   int(ts) if isinstance(ts, (int, str)) and str(ts).isdigit() else None,
                   obj.get("block"), obj.get("data"), obj.get("anchor"), obj.get("signature"), obj)


@dataclass(frozen=True)
class ItemView:
    """A data item as the SU serialises it inside a schedule node."""
    id: str
    owner: Owner
    tags: tuple[Tag, ...]
    data: Any
    anchor: str | None
    target: str | None
    signature: str | None
    raw: Mapping = field(repr=False, compare=False)

    def tag(self, name: str, default: str | None = None) -> str | None:
        return _first(self.tags, name, default)

    @classmethod
    def from_json(cls, obj: Any, where: str) -> "ItemView":
        obj = _obj(obj, where)
        return cls(str(obj.get("id", "")), _owner(obj.get("owner")), _tags(obj.get("tags"), where), obj.get("data"),
                   obj.get("anchor"), obj.get("target"), obj.get("signature"), obj)


@dataclass(frozen=True)
class Scheduled:
    """One `{message, assignment}` node of a process's schedule (message is None for assign-only)."""
    message: ItemView | None
    assignment: ItemView
    raw: Mapping = field(repr=False, compare=False)

    @property
    def nonce(self) -> int | None:
        v = self.assignment.tag("Nonce")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def timestamp(self) -> int | None:
        v = self.assignment.tag("Timestamp")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def message_id(self) -> str:
        return self.message.id if self.message else (self.assignment.tag("Message") or "")

    @classmethod
    def from_json(cls, obj: Any) -> "Scheduled":
        obj = _obj(obj, "schedule node")
        msg = obj.get("message")
        return cls(ItemView.from_json(msg, "message") if msg is not None else None,
                   ItemView.from_json(obj.get("assignment"), "assignment"), obj)


@dataclass(frozen=True)
class SchedulePage:
    """A page of `GET {su}/{process}`: the process's messages in scheduled order."""
    edges: tuple[tuple[str, Scheduled], ...]
    has_next_page: bool
    raw: Mapping = field(repr=False, compare=False)

    def __iter__(self) -> Iterator[Scheduled]:
        return (node for _, node in self.edges)

    def __len__(self) -> int:
        return len(self.edges)

    @property
    def last_cursor(self) -> str | None:
        return self.edges[-1][0] if self.edges else None

    @classmethod
    def from_json(cls, obj: Any) -> "SchedulePage":
        obj = _obj(obj, "schedule")
        edges = obj.get("edges")
        if not isinstance(edges, list):
            raise ProtocolError("schedule: 'edges' must be a list")
        out = tuple((str(_obj(e, "schedule edge").get("cursor", "")), Scheduled.from_json(e.get("node")))
                    for e in edges)
        info = obj.get("page_info") or obj.get("pageInfo") or {}
        return cls(out, bool(info.get("has_next_page", info.get("hasNextPage"))), obj)


@dataclass(frozen=True)
class Sent:
    """What `send` returns: the message id, its result, and the MU's trace when the cascade was awaited."""
    id: str
    process: str
    result: Result
    trace: Any = None
