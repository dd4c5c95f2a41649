"""The crank as pure logic: a CU result and its context in, the items the MU must push out.

Rules (PROTOCOL.md §2, §4), all in this file:
- An outbox Message keeps its own tags minus `Data-Protocol`, `Type`, `From-Process`, `From-Module`,
  `Assignments`, then gets `Data-Protocol: ao`, `Type: Message`, `From-Process: <pid>`,
  `From-Module: <pid's Module>` and `Pushed-For: <root message>` appended (in that order).
  Target = msg.Target, Anchor = msg.Anchor, Data = msg.Data or " ". An `Assignments` tag on it
  names processes the new message must also be assigned to.
- An outbox Spawn keeps its tags minus `Data-Protocol`, `Type`, `Variant`, `From-Process`,
  `From-Module`, then gets `Variant` (its own, else ao.TN.1), `Data-Protocol: ao`, `Type: Process`,
  `From-Process: <parent>`, `From-Module: <parent's Module>`, `Pushed-For`, and the parent's
  `Scheduler` when it has none.
- After a spawn lands, the parent gets a `Spawned` notice: spawn tags minus `Data-Protocol`,
  `Variant`, `Type`, plus `Data-Protocol: ao`, `Type: Message`, `Process: <new pid>`,
  `Action: Spawned`, `Variant`.
- An Assignment `{Processes:[...], Message}` is one assignment per process.
- Anything malformed becomes an `OutboxError` (recorded in the trace), never a silent skip.

Every plan carries a deterministic `key` (source id, kind, index) so the queue enqueues it once.
Nothing here signs, sends or stores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from ..protocol import DATA_PROTOCOL, VARIANT

Tags = list[tuple[str, str]]

MESSAGE_DROP = frozenset({"Data-Protocol", "Type", "From-Process", "From-Module", "Assignments"})
SPAWN_DROP = frozenset({"Data-Protocol", "Type", "Variant", "From-Process", "From-Module"})
NOTICE_DROP = frozenset({"Data-Protocol", "Variant", "Type"})


class CrankError(ValueError):
    """An outbox entry that cannot become a data item; the message names the broken rule."""


@dataclass(frozen=True)
class Context:
    """Where a result came from: the process that produced it and the cascade it belongs to."""
    process: str                 # the pid whose result this is
    module: str | None           # that process's Module tag (From-Module)
    scheduler: str | None        # that process's Scheduler tag (inherited by spawns)
    source: str                  # id of the message (or cron cursor) whose result this is
    pushed_for: str | None       # the root user message of the cascade


@dataclass(frozen=True)
class PushMessage:
    key: str
    target: str
    tags: Tags
    data: bytes
    anchor: str | None
    assign_to: tuple[str, ...] = ()
    kind: str = "message"


@dataclass(frozen=True)
class PushSpawn:
    key: str
    parent: str
    tags: Tags
    data: bytes
    anchor: str | None
    notice_tags: Tags = field(default_factory=list)  # the Spawned notice, minus the new pid
    kind: str = "spawn"


@dataclass(frozen=True)
class PushAssignment:
    key: str
    process: str
    message: str
    kind: str = "assign"


@dataclass(frozen=True)
class OutboxError:
    key: str
    what: str        # "message" | "spawn" | "assignment"
    index: int
    reason: str
    entry: Any = None
    kind: str = "error"


Plan = Union[PushMessage, PushSpawn, PushAssignment, OutboxError]


def _tags(raw: Any, where: str) -> Tags:
    """A list of {name: str, value: str}; CrankError for anything else."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise CrankError(f"{where}: Tags must be a list, got {type(raw).__name__}")
    out: Tags = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict) or "name" not in t or "value" not in t:
            raise CrankError(f"{where}: tag #{i} must be an object with name and value, got {t!r:.80}")
        name, value = t["name"], t["value"]
        if not isinstance(name, str) or not isinstance(value, str):
            raise CrankError(f"{where}: tag #{i} {name!r:.40} has a non-string name or value "
                             f"({type(value).__name__}); AO requires strings")
        if not name:
            raise CrankError(f"{where}: tag #{i} has an empty name")
        out.append((name, value))
    return out


def _data(raw: Any) -> bytes:
    if raw is None or raw == "":
        return b" "
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw) or b" "
    if isinstance(raw, str):
        return raw.encode()
    return json.dumps(raw, separators=(",", ":")).encode()


def _anchor(raw: Any, where: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise CrankError(f"{where}: Anchor must be a string, got {type(raw).__name__}")
    if len(raw.encode()) != 32:
        raise CrankError(f"{where}: Anchor must be 32 bytes, got {len(raw.encode())} ({raw!r:.40})")
    return raw


def _first(tags: Tags, name: str) -> str | None:
    for n, v in tags:
        if n == name:
            return v
    return None


def _assign_list(value: str | None) -> tuple[str, ...]:
    """The `Assignments` tag: a JSON list or a comma-separated list of pids."""
    if not value:
        return ()
    try:
        parsed = json.loads(value)
        if isinstance(parsed, list):
            return tuple(str(p) for p in parsed if p)
    except ValueError:
        pass
    return tuple(p.strip() for p in value.split(",") if p.strip())


def message_tags(own: Tags, ctx: Context) -> Tags:
    """§2 rewrite of an outbox message's tags."""
    out = [(n, v) for n, v in own if n not in MESSAGE_DROP]
    out += [("Data-Protocol", DATA_PROTOCOL), ("Type", "Message"), ("From-Process", ctx.process),
            ("From-Module", ctx.module or "")]
    if ctx.pushed_for:
        out.append(("Pushed-For", ctx.pushed_for))
    return out


def spawn_tags(own: Tags, ctx: Context) -> Tags:
    """§2 rewrite of an outbox spawn's tags into a Process item's."""
    variant = _first(own, "Variant") or VARIANT
    out = [(n, v) for n, v in own if n not in SPAWN_DROP]
    out += [("Variant", variant), ("Data-Protocol", DATA_PROTOCOL), ("Type", "Process"),
            ("From-Process", ctx.process), ("From-Module", ctx.module or "")]
    if ctx.pushed_for:
        out.append(("Pushed-For", ctx.pushed_for))
    if _first(own, "Scheduler") is None and ctx.scheduler:
        out.append(("Scheduler", ctx.scheduler))
    return out


def spawned_notice_tags(own: Tags, new_pid: str) -> Tags:
    """The `Spawned` notice to the parent (build-success-tx): needs the new pid, so built late."""
    variant = _first(own, "Variant") or VARIANT
    out = [(n, v) for n, v in own if n not in NOTICE_DROP]
    out += [("Data-Protocol", DATA_PROTOCOL), ("Type", "Message"), ("Process", new_pid),
            ("Action", "Spawned"), ("Variant", variant)]
    return out


def plan_message(entry: Any, index: int, ctx: Context) -> Plan:
    key = f"{ctx.source}:m{index}"
    where = f"Messages[{index}] of {ctx.source}"
    try:
        if not isinstance(entry, dict):
            raise CrankError(f"{where}: not an object")
        target = entry.get("Target")
        if not target or not isinstance(target, str):
            raise CrankError(f"{where}: no Target (a message without a target cannot be delivered)")
        own = _tags(entry.get("Tags"), where)
        return PushMessage(key, target, message_tags(own, ctx), _data(entry.get("Data")),
                           _anchor(entry.get("Anchor"), where), _assign_list(_first(own, "Assignments")))
    except CrankError as exc:
        return OutboxError(key, "message", index, str(exc), entry)


def plan_spawn(entry: Any, index: int, ctx: Context) -> Plan:
    key = f"{ctx.source}:s{index}"
    where = f"Spawns[{index}] of {ctx.source}"
    try:
        if not isinstance(entry, dict):
            raise CrankError(f"{where}: not an object")
        own = _tags(entry.get("Tags"), where)
        if _first(own, "Module") is None:
            raise CrankError(f"{where}: no Module tag")
        tags = spawn_tags(own, ctx)
        if _first(tags, "Scheduler") is None:
            raise CrankError(f"{where}: no Scheduler tag and the parent has none to inherit")
        return PushSpawn(key, ctx.process, tags, _data(entry.get("Data")),
                         _anchor(entry.get("Anchor"), where), own)
    except CrankError as exc:
        return OutboxError(key, "spawn", index, str(exc), entry)


def plan_assignments(entry: Any, index: int, ctx: Context) -> list[Plan]:
    key = f"{ctx.source}:a{index}"
    where = f"Assignments[{index}] of {ctx.source}"
    if not isinstance(entry, dict):
        return [OutboxError(key, "assignment", index, f"{where}: not an object", entry)]
    procs, message = entry.get("Processes"), entry.get("Message")
    if not isinstance(message, str) or not message:
        return [OutboxError(key, "assignment", index, f"{where}: Message must be an id", entry)]
    if not isinstance(procs, list) or not all(isinstance(p, str) and p for p in procs):
        return [OutboxError(key, "assignment", index, f"{where}: Processes must be a list of ids", entry)]
    return [PushAssignment(f"{key}.{j}", p, message) for j, p in enumerate(procs)]


def plan_result(result: Any, ctx: Context) -> list[Plan]:
    """Everything a result asks the MU to push, in outbox order: messages, spawns, assignments."""
    if not isinstance(result, dict):
        return [OutboxError(f"{ctx.source}:r", "result", 0, f"result of {ctx.source} is not an object", result)]
    plans: list[Plan] = []
    for name, planner in (("Messages", plan_message), ("Spawns", plan_spawn)):
        entries = result.get(name) or []
        if not isinstance(entries, list):
            plans.append(OutboxError(f"{ctx.source}:{name}", name.lower(), 0, f"{name} is not a list", entries))
            continue
        plans += [planner(e, i, ctx) for i, e in enumerate(entries)]
    entries = result.get("Assignments") or []
    if not isinstance(entries, list):
        plans.append(OutboxError(f"{ctx.source}:Assignments", "assignment", 0, "Assignments is not a list", entries))
    else:
        for i, e in enumerate(entries):
            plans += plan_assignments(e, i, ctx)
    return plans
