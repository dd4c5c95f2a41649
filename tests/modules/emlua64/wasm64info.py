"""Read a wasm module's imports and exports with their function signatures, and its memory type.

Enough of the binary format to check what a module asks of its host (the type, import, function,
memory and export sections); everything else is skipped by size. Used by the emlua64 build and its
test to compare the module with what ao-loader's wasm64 glue provides.
"""
from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"\0asm\x01\0\0\0"
VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}


class WasmInfoError(ValueError):
    """Not a wasm module this reader understands."""


@dataclass(frozen=True)
class Memory:
    minimum: int          # pages
    maximum: int | None   # pages
    memory64: bool


@dataclass(frozen=True)
class ModuleInfo:
    imports: list[tuple[str, str, str]]   # (module, name, signature "(i32 i64) -> i32"; kind for non-functions)
    exports: dict[str, str]               # name -> signature (functions) or kind
    memory: Memory | None                 # the module's own or imported memory


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise WasmInfoError("truncated module")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise WasmInfoError("LEB128 too long")

    def name(self) -> str:
        n = self.uleb()
        if self.pos + n > len(self.data):
            raise WasmInfoError("truncated name")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def valtype(self) -> str:
        b = self.byte()
        if b not in VALTYPES:
            raise WasmInfoError(f"unknown value type 0x{b:02x}")
        return VALTYPES[b]

    def limits(self) -> tuple[int, int | None, bool]:
        flags = self.byte()
        minimum = self.uleb()
        maximum = self.uleb() if flags & 1 else None
        return minimum, maximum, bool(flags & 4)


def _signature(params: list[str], results: list[str]) -> str:
    return f"({' '.join(params)}) -> {' '.join(results) if results else 'nil'}"


def read(data: bytes) -> ModuleInfo:
    if not data.startswith(MAGIC):
        raise WasmInfoError("not a wasm 1.0 binary")
    r = _Reader(data, len(MAGIC))
    types: list[str] = []
    func_types: list[int] = []          # imported functions first, then the module's own
    imports: list[tuple[str, str, str]] = []
    exports: dict[str, str] = {}
    memory: Memory | None = None
    while r.pos < len(data):
        sid = r.byte()
        size = r.uleb()
        end = r.pos + size
        if end > len(data):
            raise WasmInfoError(f"section {sid} runs past the end")
        if sid == 1:                                            # type
            for _ in range(r.uleb()):
                if r.byte() != 0x60:
                    raise WasmInfoError("unknown type form")
                params = [r.valtype() for _ in range(r.uleb())]
                results = [r.valtype() for _ in range(r.uleb())]
                types.append(_signature(params, results))
        elif sid == 2:                                          # import
            for _ in range(r.uleb()):
                mod, name, kind = r.name(), r.name(), r.byte()
                if kind == 0:
                    t = r.uleb()
                    func_types.append(t)
                    imports.append((mod, name, types[t]))
                elif kind == 1:
                    r.byte()
                    r.limits()
                    imports.append((mod, name, "table"))
                elif kind == 2:
                    lo, hi, m64 = r.limits()
                    memory = Memory(lo, hi, m64)
                    imports.append((mod, name, "memory"))
                elif kind == 3:
                    r.valtype()
                    r.byte()
                    imports.append((mod, name, "global"))
                else:
                    raise WasmInfoError(f"unknown import kind {kind}")
        elif sid == 3:                                          # function
            func_types.extend(r.uleb() for _ in range(r.uleb()))
        elif sid == 5:                                          # memory
            for _ in range(r.uleb()):
                lo, hi, m64 = r.limits()
                memory = Memory(lo, hi, m64)
        elif sid == 7:                                          # export
            for _ in range(r.uleb()):
                name, kind, index = r.name(), r.byte(), r.uleb()
                if kind == 0:
                    if index >= len(func_types):
                        raise WasmInfoError(f"export {name!r} names function {index}, which does not exist")
                    exports[name] = types[func_types[index]]
                else:
                    exports[name] = {1: "table", 2: "memory", 3: "global"}.get(kind, f"kind {kind}")
        r.pos = end
    return ModuleInfo(imports, exports, memory)
