"""What a message produces: messages, spawns and assignments in AO's result shape (PROTOCOL.md §6)."""
from __future__ import annotations

import json as _json

# Tags the runtime sets itself on every outgoing message (and never copies from an incoming one).
PROTOCOL_TAGS = frozenset({"Data-Protocol", "Variant", "Type", "From-Process", "From-Module", "Reference",
                           "Pushed-For"})


class Outbox:
    __slots__ = ("messages", "spawns", "assignments", "reference")

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.spawns: list[dict] = []
        self.assignments: list[dict] = []
        self.reference = 0          # AO's ao.reference: one counter for sends and spawns

    def clear(self) -> None:
        self.messages = []
        self.spawns = []
        self.assignments = []


OUTBOX = Outbox()


def _tag_name(key: str) -> str:
    return key.replace("_", "-") if "_" in key else key


def _tags(items, out: list) -> None:
    if items is None:
        return
    if isinstance(items, dict):
        items = items.items()
    for item in items:
        if isinstance(item, dict):
            name, value = item.get("name"), item.get("value")
        else:
            name, value = item
        if value is None:
            continue
        if not isinstance(name, str) or not name:
            raise TypeError(f"tag names must be non-empty strings, not {name!r}")
        out.append({"name": name, "value": value if isinstance(value, str) else _stringify(value)})


def _stringify(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _data(data, tags: list) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8")
    if isinstance(data, (dict, list, tuple)):
        if not any(t["name"] == "Content-Type" for t in tags):
            tags.append({"name": "Content-Type", "value": "application/json"})
        return _json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return _stringify(data)


def _split(target, data, kw: dict, target_key: str = "Target"):
    """Accept both `send("pid", "hi", Action="X")` and aos-style `send({"Target": ..., "Action": ...})`.

    Keys of an aos-style dict and entries of `Tags=` are tag names verbatim; keyword names turn `_`
    into `-`. Returns (target, data, keyword tags, verbatim tags, anchor)."""
    extra: list = []
    anchor = kw.pop("Anchor", None)
    if isinstance(target, dict):
        spec = dict(target)
        target = spec.pop(target_key, None)
        if data is None:
            data = spec.pop("Data", None)
        else:
            spec.pop("Data", None)
        tags = spec.pop("Tags", None)
        if anchor is None:
            anchor = spec.pop("Anchor", None)
        extra.extend(spec.items())
        if tags is not None:
            extra.extend(tags.items() if isinstance(tags, dict) else tags)
    tags = kw.pop("Tags", None)
    if tags is not None:
        extra.extend(tags.items() if isinstance(tags, dict) else tags)
    return target, data, kw, extra or None, anchor


class Sent:
    """Handle on a message just sent: `await sent.receive()` waits for the reply."""
    __slots__ = ("target", "reference", "message")

    def __init__(self, target, reference: str, message: dict):
        self.target = target
        self.reference = reference
        self.message = message

    def receive(self, from_: str | None = None):
        from ._handlers import receive
        return receive({"From": from_ or self.target, "X-Reference": self.reference})

    def on_reply(self, fn, from_: str | None = None):
        """Run fn(reply) once, when the reply arrives."""
        from ._handlers import HANDLERS
        HANDLERS.add(f"_reply_{self.reference}", {"From": from_ or self.target, "X-Reference": self.reference},
                     fn, runs=1, first=True)
        return self


def send(target, data=None, /, **tags) -> Sent:
    """Queue a message. Keyword arguments become tags (`Message_Id=` is the tag `Message-Id`)."""
    if type(target) is dict or "Tags" in tags or "Anchor" in tags:
        target, data, tags, extra, anchor = _split(target, data, tags)
    else:
        extra = anchor = None
    if target is not None and type(target) is not str:
        raise TypeError(f"Target must be a process id string, not {type(target).__name__}")
    box = OUTBOX
    box.reference = n = box.reference + 1
    ref = str(n)
    out_tags = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                {"name": "Type", "value": "Message"}, {"name": "Reference", "value": ref}]
    append = out_tags.append
    for k, v in tags.items():
        if v is None:
            continue
        if "_" in k:
            k = k.replace("_", "-")
        append({"name": k, "value": v if type(v) is str else _stringify(v)})
    if extra is not None:
        _tags(extra, out_tags)
    msg = {"Target": target or "", "Data": data if type(data) is str else _data(data, out_tags),
           "Anchor": anchor if anchor is not None else "%032d" % n, "Tags": out_tags}
    box.messages.append(msg)
    return Sent(target, ref, msg)


class Spawned:
    """Handle on a spawn request: `await spawned.receive()` waits for the Spawned notice."""
    __slots__ = ("reference", "message")

    def __init__(self, reference: str, message: dict):
        self.reference = reference
        self.message = message

    def receive(self):
        from ._handlers import receive
        from ._process import PROCESS
        return receive({"Action": "Spawned", "From": PROCESS.id, "Reference": self.reference})


def spawn(module: str | None = None, data=None, /, **tags) -> Spawned:
    """Queue a Spawn of a new process (default module: this process's own)."""
    from ._process import PROCESS
    module, data, kw, extra, anchor = _split(module, data, tags, target_key="Module")
    module = module or PROCESS.module
    if not isinstance(module, str) or not module:
        raise TypeError("spawn needs a module id")
    OUTBOX.reference += 1
    ref = str(OUTBOX.reference)
    out_tags = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                {"name": "Type", "value": "Process"}, {"name": "From-Process", "value": PROCESS.id},
                {"name": "From-Module", "value": PROCESS.module}, {"name": "Module", "value": module},
                {"name": "Reference", "value": ref}]
    _tags([(_tag_name(k), v) for k, v in kw.items()], out_tags)
    _tags(extra, out_tags)
    msg = {"Data": _data(data, out_tags) if data is not None else "NODATA",
           "Anchor": anchor if anchor is not None else "%032d" % OUTBOX.reference, "Tags": out_tags}
    OUTBOX.spawns.append(msg)
    return Spawned(ref, msg)


def assign(processes, message: str) -> None:
    """Queue an Assignment of an existing message to other processes."""
    if isinstance(processes, str):
        processes = [processes]
    processes = list(processes)
    if not processes or not all(isinstance(p, str) for p in processes) or not isinstance(message, str):
        raise TypeError("assign(processes: list[str], message: str)")
    OUTBOX.assignments.append({"Processes": processes, "Message": message})


def _bind() -> None:
    from . import _msg
    _msg._send = send
    _msg._PROTOCOL_TAGS = PROTOCOL_TAGS


_bind()
