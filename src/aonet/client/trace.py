"""The MU's trace of a message (`GET {mu}/?debug=true&message=ID`): every delivery the message caused.

A trace is a list of tasks (pull a result, push a message, a spawn or an assignment), each with a
`state`: pending, done or failed. The cascade is finished when at least one task exists and none is
pending. The parser accepts the MU's answer as a bare list, `{"tasks": [...]}` or AO's
`{"edges": [{"node": ...}]}` page, so it keeps working whichever shape the MU settles on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ProtocolError


@dataclass(frozen=True)
class TraceTask:
    kind: str                 # result | message | spawn | assign | error
    state: str                # pending | done | failed
    id: str | None            # the item pushed (or the message whose result was pulled)
    target: str | None
    error: str | None
    raw: Mapping = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Any) -> "TraceTask":
        if not isinstance(obj, Mapping):
            raise ProtocolError(f"trace: a task must be an object, got {obj!r:.80}")
        return cls(str(obj.get("kind", "")), str(obj.get("state", "")), obj.get("id") or obj.get("item_id"),
                   obj.get("target"), obj.get("error"), obj)


@dataclass(frozen=True)
class Trace:
    message: str
    tasks: tuple[TraceTask, ...]
    raw: Any = field(repr=False, compare=False)

    @property
    def pending(self) -> tuple[TraceTask, ...]:
        return tuple(t for t in self.tasks if t.state == "pending")

    @property
    def failures(self) -> tuple[TraceTask, ...]:
        return tuple(t for t in self.tasks if t.state == "failed")

    @property
    def done(self) -> bool:
        """Every task is finished (done or failed); an empty trace is not done: nothing ran yet."""
        if isinstance(self.raw, Mapping) and isinstance(self.raw.get("done"), bool) and self.tasks == ():
            return self.raw["done"]
        return bool(self.tasks) and not self.pending

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def failure(self) -> str:
        return "; ".join(f"{t.kind} {t.id or ''} -> {t.target or ''}: {t.error}" for t in self.failures)

    def of_kind(self, kind: str) -> tuple[TraceTask, ...]:
        return tuple(t for t in self.tasks if t.kind == kind)

    @property
    def pushed(self) -> tuple[str, ...]:
        """Ids of the messages and processes the MU pushed for this cascade, in order."""
        return tuple(t.id for t in self.tasks if t.kind in ("message", "spawn") and t.id and t.state == "done")

    @classmethod
    def from_json(cls, message: str, obj: Any) -> "Trace":
        if isinstance(obj, list):
            items = obj
        elif isinstance(obj, Mapping) and isinstance(obj.get("tasks"), list):
            items = obj["tasks"]
        elif isinstance(obj, Mapping) and isinstance(obj.get("edges"), list):
            items = [e.get("node") if isinstance(e, Mapping) else e for e in obj["edges"]]
        else:
            raise ProtocolError(f"MU trace of {message}: expected a list of tasks, got {obj!r:.200}")
        return cls(message, tuple(TraceTask.from_json(t) for t in items), obj)
