"""A small post-link editor for wasm binaries: add export aliases and rename imports.

Used to give a module built with emscripten 3.1.6 the export names a newer emscripten glue calls
(docs/emscripten.md lists every alias and why the functions are the same). Only the import and export
sections are rewritten; every other section is copied byte for byte, so function indices, code and
data do not move.
"""
from __future__ import annotations

from dataclasses import dataclass

from aonet.vm.metering import uleb as _enc_uleb

MAGIC = b"\0asm\x01\0\0\0"
SEC_IMPORT, SEC_EXPORT = 2, 7
KIND_NAMES = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}


class WasmEditError(ValueError):
    """The binary is not a wasm module this editor understands, or an edit does not apply."""


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WasmEditError("truncated LEB128")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise WasmEditError("LEB128 too long")


def _name(data: bytes, pos: int) -> tuple[str, int]:
    n, pos = _uleb(data, pos)
    if pos + n > len(data):
        raise WasmEditError("truncated name")
    return data[pos:pos + n].decode("utf-8"), pos + n


def _enc_name(s: str) -> bytes:
    b = s.encode("utf-8")
    return _enc_uleb(len(b)) + b


@dataclass(frozen=True)
class Export:
    name: str
    kind: int
    index: int


def sections(data: bytes) -> list[tuple[int, bytes]]:
    """[(section id, payload)] in file order."""
    if not data.startswith(MAGIC):
        raise WasmEditError("not a wasm 1.0 binary")
    pos, out = len(MAGIC), []
    while pos < len(data):
        sid = data[pos]
        size, pos = _uleb(data, pos + 1)
        if pos + size > len(data):
            raise WasmEditError(f"section {sid} runs past the end")
        out.append((sid, data[pos:pos + size]))
        pos += size
    return out


def _join(secs: list[tuple[int, bytes]]) -> bytes:
    return MAGIC + b"".join(bytes([sid]) + _enc_uleb(len(p)) + p for sid, p in secs)


def exports(data: bytes) -> list[Export]:
    for sid, payload in sections(data):
        if sid == SEC_EXPORT:
            return _parse_exports(payload)
    return []


def _parse_exports(payload: bytes) -> list[Export]:
    count, pos = _uleb(payload, 0)
    out = []
    for _ in range(count):
        name, pos = _name(payload, pos)
        kind = payload[pos]
        index, pos = _uleb(payload, pos + 1)
        out.append(Export(name, kind, index))
    if pos != len(payload):
        raise WasmEditError("trailing bytes in the export section")
    return out


def imports(data: bytes) -> list[tuple[str, str, int]]:
    """[(module, name, kind)]"""
    for sid, payload in sections(data):
        if sid == SEC_IMPORT:
            return [(m, n, k) for m, n, k, _ in _parse_imports(payload)]
    return []


def _parse_imports(payload: bytes) -> list[tuple[str, str, int, bytes]]:
    """[(module, name, kind, descriptor bytes)]: the descriptor is kept as it is."""
    count, pos = _uleb(payload, 0)
    out = []
    for _ in range(count):
        mod, pos = _name(payload, pos)
        name, pos = _name(payload, pos)
        kind = payload[pos]
        start = pos + 1
        if kind == 0:                                   # func: type index
            _, pos = _uleb(payload, start)
        elif kind == 1:                                 # table: reftype + limits
            pos = _limits_end(payload, start + 1)
        elif kind == 2:                                 # memory: limits
            pos = _limits_end(payload, start)
        elif kind == 3:                                 # global: valtype + mut
            pos = start + 2
        elif kind == 4:                                 # tag: attribute + type index
            _, pos = _uleb(payload, start + 1)
        else:
            raise WasmEditError(f"unknown import kind {kind}")
        out.append((mod, name, kind, payload[start:pos]))
    if pos != len(payload):
        raise WasmEditError("trailing bytes in the import section")
    return out


def _limits_end(payload: bytes, pos: int) -> int:
    flags = payload[pos]
    _, pos = _uleb(payload, pos + 1)
    if flags & 1:
        _, pos = _uleb(payload, pos)
    return pos


def edit(data: bytes, *, aliases: dict[str, str] | None = None,
         renames: dict[tuple[str, str], str] | None = None) -> bytes:
    """A copy of `data` where each `aliases[new] = old` adds export `new` for what export `old` names
    (same kind, same index), and each `renames[(module, name)] = new_name` renames that import.
    Every alias source and every renamed import must exist, and no new name may clash."""
    aliases, renames = dict(aliases or {}), dict(renames or {})
    secs = sections(data)
    out = []
    for sid, payload in secs:
        if sid == SEC_EXPORT and aliases:
            exps = _parse_exports(payload)
            by_name = {e.name: e for e in exps}
            for new, old in aliases.items():
                if old not in by_name:
                    raise WasmEditError(f"cannot alias {new!r}: no export {old!r}")
                if new in by_name:
                    raise WasmEditError(f"export {new!r} exists already")
                exps.append(Export(new, by_name[old].kind, by_name[old].index))
            aliases = {}
            payload = _enc_uleb(len(exps)) + b"".join(
                _enc_name(e.name) + bytes([e.kind]) + _enc_uleb(e.index) for e in exps)
        elif sid == SEC_IMPORT and renames:
            imps = _parse_imports(payload)
            keys = {(m, n) for m, n, _, _ in imps}
            for (m, n), new in renames.items():
                if (m, n) not in keys:
                    raise WasmEditError(f"cannot rename import {m}.{n}: the module does not import it")
                if (m, new) in keys:
                    raise WasmEditError(f"import {m}.{new} exists already")
            imps = [(m, renames.get((m, n), n), k, d) for m, n, k, d in imps]
            renames = {}
            payload = _enc_uleb(len(imps)) + b"".join(
                _enc_name(m) + _enc_name(n) + bytes([k]) + d for m, n, k, d in imps)
        out.append((sid, payload))
    if aliases:
        raise WasmEditError("the module has no export section")
    if renames:
        raise WasmEditError("the module has no import section")
    return _join(out)
