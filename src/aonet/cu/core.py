"""The CU's pure core: what a process is, what limits it runs under, and how the SU's schedule becomes
the exact sequence of messages a module sees (PROTOCOL.md §5.1 steps 1, 2, 4, 5).

Nothing here does I/O. The shell (engine.py) fetches JSON from the SU and the gateway and hands it
to these functions, which either return plain values or raise a `CUError` naming the broken rule.

Rules kept here:
- Process: tags `Data-Protocol=ao`, `Type=Process`, `Module` are required (`InvalidProcess`).
- Limits: `Memory-Limit` / `Compute-Limit` from the process, else the module; missing or above the
  unit's maxima -> `LimitExceeded` (413, as AO); unknown `Module-Format` or missing encodings ->
  `Unsupported` (422, as AO).
- Message mapping (AO `ao-su.js mapNode`): `From` = the `From-Process` tag or the owner address;
  `Forwarded-By` = the owner when `From-Process` is present; `Target` = the assignment's `Process`
  tag; `Epoch`, `Nonce`, `Timestamp`, `Block-Height` as integers; `Hash-Chain`; `Cron: false`;
  `Read-Only: false`; `Message` (the assigned id) for assignments. Tags named `From` or `Owner` are
  stripped before evaluation.
- Hash chain: nonces are consecutive from 0; nonce 0 carries `b64url(sha256(raw(processId)))`;
  every next one `b64url(sha256(raw(prevAssignmentId) || raw(prevHashChain)))` (`ChainError`).
"""
from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass, field
from collections.abc import Iterable, Mapping

from ..protocol import tag_value
from ..vm.base import DEFAULT_COMPUTE_LIMIT, DEFAULT_MEMORY_LIMIT, Limits, parse_size
from .errors import ChainError, InvalidProcess, LimitExceeded, UpstreamError, Unsupported


def _tags(raw) -> list[dict]:
    """SU/gateway tags, checked. A list that is already clean ({name, value} dicts of strings, the
    normal case) is returned as is, without a copy: callers never mutate tag lists."""
    if raw is None:
        return []
    if type(raw) is not list:
        if not isinstance(raw, list):
            raise UpstreamError(f"tags must be a list, got {type(raw).__name__}")
        raw = list(raw)
    for t in raw:
        if type(t) is not dict or len(t) != 2 or type(t.get("name")) is not str or type(t.get("value")) is not str:
            return _clean_tags(raw)
    return raw


def _clean_tags(raw: list) -> list[dict]:
    out = []
    for t in raw:
        if isinstance(t, Mapping) and isinstance(t.get("name"), str) and isinstance(t.get("value"), str):
            out.append({"name": t["name"], "value": t["value"]})
        else:
            raise UpstreamError(f"malformed tag {str(t)[:80]!r}")
    return out


def _int(value, what: str) -> int:
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            pass
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise UpstreamError(f"{what} is not an integer: {str(value)[:40]!r}") from None


def _tag_int(value, name: str, aid: str) -> int:
    """An integer assignment tag (the message is only formatted on failure: this runs 4x per message)."""
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            pass
    return _int(value, f"{name} of assignment {aid}")


# ---- the process -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessMeta:
    """`GET {su}/processes/{id}`, checked."""
    id: str
    owner: str                  # address
    owner_key: str              # base64url public key
    tags: list[dict]
    block_height: int           # origin block
    timestamp: int              # origin timestamp (ms)
    module_id: str
    data: str | None = None
    anchor: str | None = None
    signature: str | None = None

    @classmethod
    def from_su_json(cls, obj: Mapping) -> "ProcessMeta":
        if not isinstance(obj, Mapping):
            raise UpstreamError("SU process record is not a JSON object")
        tags = _tags(obj.get("tags"))
        pid = obj.get("process_id") or obj.get("id")
        if not isinstance(pid, str):
            raise UpstreamError("SU process record has no process_id")
        if tag_value(tags, "Data-Protocol") != "ao" or tag_value(tags, "Type") != "Process":
            raise InvalidProcess(f"{pid} is not an AO process (needs tags Data-Protocol=ao, Type=Process)")
        module = tag_value(tags, "Module")
        if not module:
            raise InvalidProcess(f"process {pid} has no Module tag")
        owner = obj.get("owner") or {}
        if not isinstance(owner, Mapping) or not isinstance(owner.get("address"), str):
            raise UpstreamError(f"SU process record of {pid} has no owner address")
        return cls(id=pid, owner=owner["address"], owner_key=str(owner.get("key") or ""), tags=tags,
                   block_height=_int(obj.get("block", 0), "process block"),
                   timestamp=_int(obj.get("timestamp", 0), "process timestamp"), module_id=module,
                   data=obj.get("data"), anchor=obj.get("anchor"), signature=obj.get("signature"))

    def to_json(self) -> dict:
        return {"process_id": self.id, "owner": {"address": self.owner, "key": self.owner_key}, "tags": self.tags,
                "block": str(self.block_height), "timestamp": self.timestamp, "data": self.data,
                "anchor": self.anchor, "signature": self.signature}


@dataclass(frozen=True)
class ModuleMeta:
    """A Module item's id, owner address and tags (the bytes travel separately)."""
    id: str
    owner: str
    tags: list[dict]

    @property
    def format(self) -> str | None:
        return tag_value(self.tags, "Module-Format")


@dataclass(frozen=True)
class UnitLimits:
    """This unit's maxima (AO: PROCESS_WASM_MEMORY_MAX_LIMIT 1 GiB, compute 9e12)."""
    max_memory: int = DEFAULT_MEMORY_LIMIT
    max_compute: int = DEFAULT_COMPUTE_LIMIT


def process_limits(process_tags: Iterable, module: ModuleMeta, unit: UnitLimits, process_id: str = "") -> Limits:
    """The process's Limits: its own tags override the module's; 413 if missing or over the maxima."""
    process_tags = list(process_tags)
    mem_text = tag_value(process_tags, "Memory-Limit") or tag_value(module.tags, "Memory-Limit")
    cpu_text = tag_value(process_tags, "Compute-Limit") or tag_value(module.tags, "Compute-Limit")
    if not mem_text:
        raise LimitExceeded(f"Memory-Limit for process \"{process_id}\" is missing (set it on the module or process)")
    try:
        memory = parse_size(mem_text)
    except ValueError:
        raise LimitExceeded(f"Memory-Limit {mem_text!r} for process \"{process_id}\" is not a size") from None
    if memory <= 0 or memory > unit.max_memory:
        raise LimitExceeded(f"Memory-Limit for process \"{process_id}\" exceeds supported limit "
                            f"({memory} > {unit.max_memory} bytes)")
    if not cpu_text:
        raise LimitExceeded(f"Compute-Limit for process \"{process_id}\" is missing (set it on the module or process)")
    try:
        compute = int(str(cpu_text).strip())
    except ValueError:
        raise LimitExceeded(f"Compute-Limit {cpu_text!r} for process \"{process_id}\" is not an integer") from None
    if compute <= 0 or compute > unit.max_compute:
        raise LimitExceeded(f"Compute-Limit for process \"{process_id}\" exceeds supported limit "
                            f"({compute} > {unit.max_compute})")
    return Limits(memory=memory, compute=compute)


def check_module(module: ModuleMeta, formats: Iterable[str]) -> str:
    """The module's format if this unit serves it; 422 otherwise (as AO)."""
    formats = tuple(formats)
    if not tag_value(module.tags, "Input-Encoding"):
        raise Unsupported(f"Input-Encoding for module \"{module.id}\" is not supported")
    if not tag_value(module.tags, "Output-Encoding"):
        raise Unsupported(f"Output-Encoding for module \"{module.id}\" is not supported")
    fmt = module.format
    if fmt not in formats:
        raise Unsupported(f"Module-Format for module \"{module.id}\" is not supported "
                          f"({fmt!r}; this unit runs {', '.join(formats) or 'nothing'})")
    return fmt


def build_env(process: ProcessMeta, module: ModuleMeta) -> dict:
    """AO's AoGlobal: the second JSON argument of every call, the same for every message."""
    return {"Process": {"Id": process.id, "Owner": process.owner, "Tags": process.tags},
            "Module": {"Id": module.id, "Owner": module.owner, "Tags": module.tags}}


# ---- scheduled messages ------------------------------------------------------------------------
@dataclass
class Scheduled:
    """One SU node, mapped: the message the module sees plus the assignment facts the CU tracks."""
    msg: dict
    nonce: int
    timestamp: int
    block_height: int
    epoch: int
    assignment_id: str
    hash_chain: str
    message_id: str
    is_assignment: bool = False          # an `assign` of an existing item (hydrate it from the gateway)
    exclude: tuple[str, ...] = ()
    is_process: bool = False             # the process's own item (nonce 0 after aop-6)
    pushed: bool = False                 # carries From-Process: may arrive twice (duplicate check)


STRIPPED_TAGS = ("From", "Owner")


def strip_tags(tags: list[dict]) -> list[dict]:
    return [t for t in tags if t["name"] not in STRIPPED_TAGS]


def map_node(node: Mapping, process_id: str) -> Scheduled:
    """An SU `{message, assignment}` node -> `Scheduled` (PROTOCOL.md §5.1 step 4).

    This runs once per evaluated message, so the tags are scanned once each and nothing is copied
    that the module does not need copied (the SU's tag dicts are shared, read-only)."""
    a = node.get("assignment") if isinstance(node, dict) or isinstance(node, Mapping) else None
    if not isinstance(a, dict) and not isinstance(a, Mapping):
        raise UpstreamError("SU node has no assignment")
    aid = a.get("id")
    if type(aid) is not str:
        raise UpstreamError("SU assignment has no id")
    fields: dict[str, str] = {}
    exclude: list[str] = []
    for t in _tags(a.get("tags")):
        name = t["name"]
        if name == "Exclude":
            exclude.append(t["value"])
        elif name not in fields:
            fields[name] = t["value"]
    target = fields.get("Process")
    if target != process_id:
        raise ChainError(f"assignment {aid} is for process {target!r}, not {process_id}")
    nonce = _tag_int(fields.get("Nonce"), "Nonce", aid)
    ts = _tag_int(fields.get("Timestamp"), "Timestamp", aid)
    height = _tag_int(fields.get("Block-Height"), "Block-Height", aid)
    epoch = _tag_int(fields.get("Epoch", "0"), "Epoch", aid)
    chain = fields.get("Hash-Chain") or ""
    m = node.get("message")
    if m is None:
        mid = fields.get("Message")
        if not mid:
            raise UpstreamError(f"assignment {aid} has neither a message nor a Message tag")
        msg = {"Id": mid, "Message": mid, "Target": process_id, "Epoch": epoch, "Nonce": nonce, "Timestamp": ts,
               "Block-Height": height, "Hash-Chain": chain, "Cron": False, "Read-Only": False}
        return Scheduled(msg, nonce, ts, height, epoch, aid, chain, mid, is_assignment=True, exclude=tuple(exclude))
    mid = m.get("id") if isinstance(m, Mapping) else None
    if type(mid) is not str:
        raise UpstreamError(f"message of assignment {aid} is malformed")
    owner = m.get("owner")
    owner = owner.get("address") if isinstance(owner, Mapping) else None
    if type(owner) is not str:
        raise UpstreamError(f"message {mid} has no owner address")
    tags = _tags(m.get("tags"))
    from_process = type_tag = None
    strip = False
    for t in tags:
        name = t["name"]
        if name == "From-Process":
            if from_process is None:
                from_process = t["value"]
        elif name == "Type":
            if type_tag is None:
                type_tag = t["value"]
        elif name == "From" or name == "Owner":
            strip = True
    kept = strip_tags(tags) if strip else tags
    data = m.get("data")
    msg = {"Id": mid, "Signature": m.get("signature"), "Data": data if data is not None else "", "Owner": owner,
           "Anchor": m.get("anchor"), "Tags": kept, "From": from_process or owner}
    if from_process:
        msg["Forwarded-By"] = owner
    msg["Target"] = process_id
    msg["Epoch"] = epoch
    msg["Nonce"] = nonce
    msg["Timestamp"] = ts
    msg["Block-Height"] = height
    msg["Hash-Chain"] = chain
    msg["Cron"] = False
    msg["Read-Only"] = False
    return Scheduled(msg, nonce, ts, height, epoch, aid, chain, mid, is_process=type_tag == "Process",
                     pushed=bool(from_process))


def message_fields(mid: str, owner: str, tags: list[dict], data, anchor, signature) -> dict:
    """Id, Signature, Data, Owner, Anchor, Tags (From/Owner stripped), From, Forwarded-By."""
    from_process = tag_value(tags, "From-Process")
    msg = {"Id": mid, "Signature": signature, "Data": data if data is not None else "", "Owner": owner,
           "Anchor": anchor, "Tags": strip_tags(tags), "From": from_process or owner}
    if from_process:
        msg["Forwarded-By"] = owner
    return msg


def hydrate(s: Scheduled, *, owner: str, tags: list[dict], data: str, anchor: str | None, signature: str | None,
            recipient: str) -> None:
    """Fill an assignment of an existing item with its fields (gateway meta + data), minus `Exclude`."""
    fields = message_fields(s.message_id, owner, tags, data, anchor, signature)
    if "Data" in s.exclude:
        fields["Data"] = ""
    if "Tags" in s.exclude:
        fields["Tags"] = []
    fields["Target"] = recipient or ""
    keep = {k: s.msg[k] for k in ("Epoch", "Nonce", "Timestamp", "Block-Height", "Hash-Chain", "Cron",
                                  "Read-Only", "Message")}
    s.msg = {**fields, **keep}


_URL_TO_STD = str.maketrans("-_", "+/")


def _raw_id(text: str) -> bytes:
    """base64url (no padding) -> bytes, strictly; ValueError otherwise. ~0.6 µs for an id."""
    if type(text) is not str or "+" in text or "/" in text or "=" in text:
        raise ValueError(f"not base64url: {str(text)[:60]!r}")
    try:
        return binascii.a2b_base64(text.translate(_URL_TO_STD) + "=" * (-len(text) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not base64url: {text[:60]!r}") from None


def _b64url(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii").translate(_STD_TO_URL).rstrip("=")


_STD_TO_URL = str.maketrans("+/", "-_")


def first_hash_chain(process_id: str) -> str:
    return _b64url(hashlib.sha256(_raw_id(process_id)).digest())


def next_hash_chain(prev_assignment_id: str, prev_hash_chain: str) -> str:
    return _b64url(hashlib.sha256(_raw_id(prev_assignment_id) + _raw_id(prev_hash_chain)).digest())


@dataclass
class ChainState:
    """Where the schedule stands: the last scheduled item checked (nonce -1 before the first)."""
    nonce: int = -1
    assignment_id: str | None = None
    hash_chain: str | None = None
    _raw: bytes | None = field(default=None, repr=False, compare=False)   # raw(hash_chain) once checked

    def check(self, s: Scheduled, process_id: str, verify: bool = True) -> None:
        """Raise ChainError unless `s` is the next link; then advance."""
        if s.nonce != self.nonce + 1:
            raise ChainError(f"process {process_id}: expected nonce {self.nonce + 1}, SU sent {s.nonce} "
                             f"(assignment {s.assignment_id})")
        raw = None
        if verify:
            try:
                if s.nonce == 0:
                    raw = hashlib.sha256(_raw_id(process_id)).digest()
                else:
                    prev = self._raw if self._raw is not None else _raw_id(self.hash_chain or "")
                    raw = hashlib.sha256(_raw_id(self.assignment_id or "") + prev).digest()
            except ValueError as exc:
                raise ChainError(f"process {process_id}: cannot compute the hash chain: {exc}") from None
            want = _b64url(raw)
            if s.hash_chain != want:
                raise ChainError(f"process {process_id}: Hash-Chain of nonce {s.nonce} is {s.hash_chain!r}, "
                                 f"expected {want!r}")
        self.nonce, self.assignment_id, self.hash_chain, self._raw = s.nonce, s.assignment_id, s.hash_chain, raw


def synthetic_process_message(p: ProcessMeta) -> dict:
    """The process itself as its first message, for pre-aop-6 schedules whose nonce 0 is not the Process."""
    msg = message_fields(p.id, p.owner, p.tags, p.data, p.anchor, p.signature)
    msg.update({"Target": p.id, "Timestamp": p.timestamp, "Block-Height": p.block_height, "Cron": False,
                "Read-Only": False})
    return msg


def dry_run_message(body: Mapping, process_id: str, last_timestamp: int, last_height: int) -> dict:
    """A dry-run body -> the message evaluated (AO: From = From-Process tag or Owner; Read-Only true).

    Raises ValueError on malformed input (the shell answers 400).
    """
    if not isinstance(body, Mapping):
        raise ValueError("dry-run body must be a JSON object")
    tags = body.get("Tags", [])
    if not isinstance(tags, list) or not all(
            isinstance(t, Mapping) and isinstance(t.get("name"), str) and isinstance(t.get("value"), str)
            for t in tags):
        raise ValueError("Tags must be a list of {name: string, value: string}")
    tags = [{"name": t["name"], "value": t["value"]} for t in tags]
    owner = body.get("Owner")
    if owner is not None and not isinstance(owner, str):
        raise ValueError("Owner must be a string")
    for key in ("Id", "Target", "Anchor"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            raise ValueError(f"{key} must be a string")
    data = body.get("Data", "")
    if data is None:
        data = ""
    if not isinstance(data, (str, int, float, bool)):
        raise ValueError("Data must be a string")
    target = body.get("Target") or process_id
    if target != process_id:
        raise ValueError(f"Target {target!r} is not the process {process_id}")

    def num(key: str, default: int) -> int:
        v = body.get(key)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be an integer") from None

    from_process = tag_value(tags, "From-Process")
    msg = {"Id": body.get("Id") or "", "Signature": body.get("Signature"), "Data": data, "Owner": owner or "",
           "Anchor": body.get("Anchor"), "Tags": strip_tags(tags), "From": from_process or owner or "",
           "Target": process_id, "Timestamp": num("Timestamp", last_timestamp),
           "Block-Height": num("Block-Height", last_height), "Cron": False, "Read-Only": True}
    if from_process and owner:
        msg["Forwarded-By"] = owner
    return msg
