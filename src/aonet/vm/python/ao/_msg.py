"""The message a handler receives: AO's fields plus its tags, read like attributes."""
from __future__ import annotations

import json as _json

_send = None          # ao._outbox.send, bound by _outbox at import (avoids an import per reply)
_PROTOCOL_TAGS: frozenset = frozenset()

# Fields set by the scheduler/CU; a tag can never shadow one of these.
FIELDS = frozenset({"Id", "Signature", "Data", "Owner", "Anchor", "Tags", "From", "Forwarded-By", "Target",
                    "Epoch", "Nonce", "Timestamp", "Block-Height", "Hash-Chain", "Cron", "Read-Only",
                    "Message", "Module"})


class BadMessage(ValueError):
    """The host handed over a message that is not in AO's shape."""


class Msg:
    """One incoming message. `msg.Action`, `msg.From`, `msg["X-Reference"]`, `msg.tags`, `msg.json()`.

    Lookups go to the message's own fields first, then to its tags (first value wins); a name with
    `_` also tries `-` (`msg.Reply_To` == `msg["Reply-To"]`). Missing names read as None.
    `msg.Tags` is the tag map (as in aos); `msg.tag_list` the raw list.
    """
    __slots__ = ("raw", "tags", "tag_list", "_all")

    def __init__(self, raw: dict):
        self.raw = raw
        tl = raw.get("Tags") or []
        tags: dict[str, str] = {}
        if type(tl) is not list:
            raise BadMessage("Tags must be a list of {name, value} objects")
        for t in tl:
            if type(t) is not dict or type(t.get("name")) is not str:
                raise BadMessage("Tags must be a list of {name, value} objects")
            n = t["name"]
            if n not in tags:
                tags[n] = t.get("value")
        self.tags = tags
        self.tag_list = tl
        merged = dict(tags)          # one lookup table: the message's fields win over its tags
        merged.update(raw)
        merged["Tags"] = tags
        self._all = merged

    def get(self, name: str, default=None):
        v = self._all.get(name)
        return default if v is None else v

    def __getitem__(self, name: str):
        return self._all.get(name)

    def __getattr__(self, name: str):
        if name[:2] == "__":
            raise AttributeError(name)
        v = self._all.get(name)
        if v is None and "_" in name:
            v = self._all.get(name.replace("_", "-"))
        return v

    def __contains__(self, name: str) -> bool:
        return self._all.get(name) is not None

    def json(self):
        """The Data, decoded as JSON."""
        return _json.loads(self.raw.get("Data") or "null")

    def reply(self, data=None, /, **tags):
        """Answer this message (AO's msg.reply): to Reply-To or From, with X-Reference / X-Origin."""
        target = tags.pop("Target", None)
        target = self.get("Reply-To") or target or self.get("From")
        ref = self.get("X-Reference") or self.get("Reference")
        if ref is not None:
            tags["X-Reference"] = ref
        origin = self.get("X-Origin")
        if origin is not None:
            tags["X-Origin"] = origin
        return _send(target, data, **tags)

    def forward(self, target: str, data=None, /, **tags):
        """Send a copy of this message on to `target` (AO's msg.forward)."""
        out: dict[str, object] = {}
        for t in self.tag_list:
            n = t.get("name")
            if n not in _PROTOCOL_TAGS and n not in out:
                out[n] = t.get("value")
        out.update(tags)
        out["Reply-To"] = self.get("Reply-To") or self.get("From")
        ref = self.get("X-Reference") or self.get("Reference")
        if ref is not None:
            out["X-Reference"] = ref
        out["X-Origin"] = self.get("X-Origin") or self.get("From")
        return _send(target, self.raw.get("Data") if data is None else data, **out)

    def __repr__(self) -> str:
        return f"Msg(Id={self.get('Id')!r}, From={self.get('From')!r}, Action={self.get('Action')!r})"
