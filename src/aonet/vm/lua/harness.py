"""Drive one Lua process directly, without SU/CU: AO-shaped messages with ids, nonces and timestamps.

Why: tests, benchmarks and REPL-style experiments need the exact msg/env the CU builds
(PROTOCOL.md section 5.1 steps 4-5) without running the network.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any, Mapping, Sequence

from ..base import Limits, Result

Tags = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def fake_id(*parts: object) -> str:
    """A 43-character base64url id derived from parts (deterministic, like an Arweave id)."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def tag_list(tags: Tags | None) -> list[dict[str, str]]:
    """{"Action": "Eval"} or [{"name":..., "value":...}] -> AO's tag list with string values."""
    if tags is None:
        return []
    if isinstance(tags, Mapping):
        return [{"name": str(k), "value": str(v)} for k, v in tags.items()]
    return [{"name": str(t["name"]), "value": str(t["value"])} for t in tags]


class LuaProcess:
    """One process instance plus the bookkeeping a scheduler would do (nonce, time, block height)."""

    def __init__(self, instance: Any, process_id: str, owner: str, module_id: str, process_tags: list[dict],
                 timestamp: int, block_height: int = 1000):
        self.instance = instance
        self.id = process_id
        self.owner = owner
        self.module_id = module_id
        self.env = {"Process": {"Id": process_id, "Owner": owner, "Tags": process_tags},
                    "Module": {"Id": module_id, "Owner": owner, "Tags": []}}
        self.nonce = 0
        self.timestamp = timestamp
        self.block_height = block_height
        self.boot: Result | None = None

    @classmethod
    def spawn(cls, runtime: Any = None, *, module: bytes | None = None, tags: Tags | None = None, data: str = "",
              owner: str | None = None, process_id: str | None = None, module_id: str | None = None,
              timestamp: int = 1_700_000_000_000, limits: Limits = Limits()) -> "LuaProcess":
        """Instantiate the Lua module and evaluate the process message (Type=Process) that boots it."""
        if runtime is None:
            from ..wasm import WasmRuntime
            runtime = WasmRuntime()
        if module is None:
            from . import lua_module
            module = lua_module()
        owner = owner or fake_id("owner")
        module_id = module_id or fake_id("module", hashlib.sha256(module).hexdigest())
        process_id = process_id or fake_id("process", owner, timestamp)
        ptags = [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                 {"name": "Type", "value": "Process"}, {"name": "Module", "value": module_id},
                 {"name": "Scheduler", "value": fake_id("scheduler")}, *tag_list(tags)]
        proc = cls(runtime.instantiate(module, limits), process_id, owner, module_id, ptags, timestamp)
        boot = proc.message(ptags, data, id=process_id)
        proc.boot = proc.instance.handle(boot, proc.env)
        return proc

    def message(self, tags: Tags | None, data: Any = "", *, from_: str | None = None, owner: str | None = None,
                id: str | None = None, **fields: Any) -> dict:
        """The next message as the CU hands it to the module (advances nonce, time and height)."""
        tl = tag_list(tags)
        signer = owner or from_ or self.owner
        from_process = next((t["value"] for t in tl if t["name"] == "From-Process"), None)
        msg = {
            "Id": id or fake_id(self.id, "message", self.nonce),
            "Signature": "",
            "Owner": signer,
            "From": from_ or from_process or signer,
            "Target": self.id,
            "Anchor": "",
            "Tags": tl,
            "Data": data,
            "Epoch": 0,
            "Nonce": self.nonce,
            "Timestamp": self.timestamp,
            "Block-Height": self.block_height,
            "Hash-Chain": "",
            "Cron": False,
            "Read-Only": False,
        }
        if from_process is not None or (from_ is not None and from_ != signer):
            msg["Forwarded-By"] = signer
        msg.update(fields)
        self.nonce += 1
        self.timestamp += 1
        return msg

    def send(self, tags: Tags | None = None, data: Any = "", **kw: Any) -> Result:
        """Build and evaluate one message; returns its Result."""
        return self.instance.handle(self.message(tags, data, **kw), self.env)

    def eval(self, code: str, **kw: Any) -> Result:
        """Evaluate Lua code as the owner (Action=Eval)."""
        return self.send({"Action": "Eval"}, code, **kw)
