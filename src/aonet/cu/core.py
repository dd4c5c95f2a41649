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

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..encoding import b64url_decode, b64url_encode
from ..protocol import tag_value
from ..vm.base import DEFAULT_COMPUTE_LIMIT, DEFAULT_MEMORY_LIMIT, Limits, parse_size
from .errors import ChainError, InvalidProcess, LimitExceeded, UpstreamError, Unsupported


def _tags(raw) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise UpstreamError(f"tags must be a list, got {type(raw).__name__}")
    out = []
    for t in raw:
        if isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("value"), str):
            out.append({"name": t["name"], "value": t["value"]})
        else:
            raise UpstreamError(f"malformed tag {str(t)[:80]!r}")
    return out


def _int(value, what: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise UpstreamError(f"{what} is not an integer: {str(value)[:40]!r}") from None


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
    extra: dict = field(default_factory=dict)


STRIPPED_TAGS = ("From", "Owner")


def strip_tags(tags: list[dict]) -> list[dict]:
    return [t for t in tags if t["name"] not in STRIPPED_TAGS]


def map_node(node: Mapping, process_id: str) -> Scheduled:
    """An SU `{message, assignment}` node -> `Scheduled` (PROTOCOL.md §5.1 step 4)."""
    if not isinstance(node, Mapping) or not isinstance(node.get("assignment"), Mapping):
        raise UpstreamError("SU node has no assignment")
    a = node["assignment"]
    atags = _tags(a.get("tags"))
    aid = a.get("id")
    if not isinstance(aid, str):
        raise UpstreamError("SU assignment has no id")
    target = tag_value(atags, "Process")
    if target != process_id:
        raise ChainError(f"assignment {aid} is for process {target!r}, not {process_id}")
    nonce = _int(tag_value(atags, "Nonce"), f"Nonce of assignment {aid}")
    ts = _int(tag_value(atags, "Timestamp"), f"Timestamp of assignment {aid}")
    height = _int(tag_value(atags, "Block-Height"), f"Block-Height of assignment {aid}")
    epoch = _int(tag_value(atags, "Epoch", "0"), f"Epoch of assignment {aid}")
    chain = tag_value(atags, "Hash-Chain") or ""
    m = node.get("message")
    exclude = tuple(t["value"] for t in atags if t["name"] == "Exclude")
    common = {"Target": process_id, "Epoch": epoch, "Nonce": nonce, "Timestamp": ts, "Block-Height": height,
              "Hash-Chain": chain, "Cron": False, "Read-Only": False}
    if m is None:
        mid = tag_value(atags, "Message")
        if not mid:
            raise UpstreamError(f"assignment {aid} has neither a message nor a Message tag")
        msg = {"Id": mid, "Message": mid, **common}
        return Scheduled(msg, nonce, ts, height, epoch, aid, chain, mid, is_assignment=True, exclude=exclude)
    if not isinstance(m, Mapping) or not isinstance(m.get("id"), str):
        raise UpstreamError(f"message of assignment {aid} is malformed")
    tags = _tags(m.get("tags"))
    owner = (m.get("owner") or {}).get("address") if isinstance(m.get("owner"), Mapping) else None
    if not isinstance(owner, str):
        raise UpstreamError(f"message {m['id']} has no owner address")
    msg = message_fields(m["id"], owner, tags, m.get("data"), m.get("anchor"), m.get("signature"))
    msg.update(common)
    is_process = tag_value(tags, "Type") == "Process"
    return Scheduled(msg, nonce, ts, height, epoch, aid, chain, m["id"], is_process=is_process)


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


def first_hash_chain(process_id: str) -> str:
    return b64url_encode(hashlib.sha256(b64url_decode(process_id)).digest())


def next_hash_chain(prev_assignment_id: str, prev_hash_chain: str) -> str:
    return b64url_encode(hashlib.sha256(b64url_decode(prev_assignment_id) + b64url_decode(prev_hash_chain)).digest())


@dataclass
class ChainState:
    """Where the schedule stands: the last scheduled item checked (nonce -1 before the first)."""
    nonce: int = -1
    assignment_id: str | None = None
    hash_chain: str | None = None

    def check(self, s: Scheduled, process_id: str, verify: bool = True) -> None:
        """Raise ChainError unless `s` is the next link; then advance."""
        if s.nonce != self.nonce + 1:
            raise ChainError(f"process {process_id}: expected nonce {self.nonce + 1}, SU sent {s.nonce} "
                             f"(assignment {s.assignment_id})")
        if verify:
            try:
                want = (first_hash_chain(process_id) if s.nonce == 0
                        else next_hash_chain(self.assignment_id or "", self.hash_chain or ""))
            except ValueError as exc:
                raise ChainError(f"process {process_id}: cannot compute the hash chain: {exc}") from None
            if s.hash_chain != want:
                raise ChainError(f"process {process_id}: Hash-Chain of nonce {s.nonce} is {s.hash_chain!r}, "
                                 f"expected {want!r}")
        self.nonce, self.assignment_id, self.hash_chain = s.nonce, s.assignment_id, s.hash_chain


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
