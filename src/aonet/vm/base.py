"""The runtime interface every process runtime ("device") implements.

A runtime turns module bytes into instances; an instance handles one message at a time and can be
snapshotted and restored. Everything here is plain data: no wasmtime, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_MEMORY_LIMIT = 1 << 30          # 1 GiB, AO's PROCESS_WASM_MEMORY_MAX_LIMIT
DEFAULT_COMPUTE_LIMIT = 9_000_000_000_000  # AO's max Compute-Limit


class VMError(Exception):
    """A module could not be loaded or instantiated (bad bytes, missing exports, over the unit's limits)."""


class LimitError(VMError):
    """A module or process asks for more than this unit allows (HTTP 413 at the edge)."""


@dataclass(frozen=True)
class Limits:
    memory: int = DEFAULT_MEMORY_LIMIT    # maximum linear memory in bytes
    compute: int = DEFAULT_COMPUTE_LIMIT  # fuel per message


@dataclass
class Result:
    """One message's outcome, in AO's shape (see docs/abi.md)."""
    output: Any = ""
    messages: list[dict] = field(default_factory=list)
    spawns: list[dict] = field(default_factory=list)
    assignments: list[dict] = field(default_factory=list)
    error: Any = None
    gas_used: int = 0

    @classmethod
    def from_json(cls, obj: dict, gas_used: int = 0) -> "Result":
        return cls(
            output=obj.get("Output", ""),
            messages=list(obj.get("Messages") or []),
            spawns=list(obj.get("Spawns") or []),
            assignments=list(obj.get("Assignments") or []),
            error=obj.get("Error"),
            gas_used=gas_used,
        )

    def to_json(self) -> dict:
        out = {"Output": self.output, "Messages": self.messages, "Spawns": self.spawns,
               "Assignments": self.assignments, "GasUsed": self.gas_used}
        if self.error is not None:
            out["Error"] = self.error
        return out


class Instance(Protocol):
    def handle(self, msg: dict, env: dict) -> Result:
        """Evaluate one message. On Error, trap or exhausted limit the state is left as it was before."""
    def snapshot(self) -> bytes:
        """The deterministic state image (the whole linear memory)."""
    def restore(self, image: bytes) -> None:
        """Replace this instance's state with an image taken by snapshot()."""


class Runtime(Protocol):
    formats: tuple[str, ...]   # the Module-Format values this runtime serves
    def instantiate(self, module: bytes, limits: Limits) -> Instance: ...


_SIZE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}


def parse_size(text: str) -> int:
    """Parse AO's Memory-Limit values: '1-gb', '512-mb', '16777216-b', '1gb', '1048576'."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*-?\s*([kmgt]?b)?\s*", str(text).lower())
    if not m:
        raise ValueError(f"not a memory size: {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2) or "b"])
