"""AO's gas metering pass (npm @permaweb/wasm-metering 0.2.2 as bundled in @permaweb/ao-loader 0.0.49),
reimplemented so aonet can serve `wasm32-unknown-emscripten-metering` and
`wasm64-unknown-emscripten-draft_2024_10_16-metering`: for those formats the loader receives the module
unmetered and meters it itself at load time. The output must be the loader's byte for byte, because
where the `usegas` calls land and what they charge is the process's GasUsed.

What the JavaScript does (read for facts; tests/test_vm_metering.py compares bytes with it):
- The module goes through wasm-json-toolkit: parsed to JSON and written back. Every LEB128 is written
  minimally, names are re-encoded (an import's or custom section's name length is the JavaScript
  string length, i.e. UTF-16 units, its bytes UTF-8), and only what that toolkit knows is accepted:
  the MVP opcodes plus sign extension, MVP element/data segments, single-result function types. On
  anything else the loader fails; here it is a `MeteringError`.
- A type `(func (param i32|i64))` is appended to the type section and an import `metering.usegas` of
  that type to the import section (each created empty, before the first non-custom section with a
  larger id, when missing). A module that already imports `metering.usegas` is refused.
- Function indices at or above the number of imported functions move up by one in `call`, exports,
  the start function and element segments; nothing else (the name section keeps the old indices).
- Each function body is cut after every `grow_memory`, `end`, `br`, `br_table`, `br_if`, `if`,
  `else`, `return` and `loop`; a piece whose opcodes cost something (COST, by the opcode's name
  without its type prefix: `f32.add` costs what `add` does) gets `<meter>.const (cost + 91)
  call usegas` in front of it (91: the metering statement's own `const` + `call`).
Function types and locals cost 0 under the default table (the package looks the locals' cost up
under a key the table does not have), so they add nothing.
"""
from __future__ import annotations

from .base import VMError


class MeteringError(VMError):
    """The metering pass cannot process the module (ao-loader fails to load it too)."""


METER_TYPES = ("i32", "i64")

# the package's defaultCostTable.json, code costs by short opcode name (anything else costs 0)
COST = {
    "get_local": 120, "set_local": 120, "tee_local": 120, "get_global": 120, "set_global": 120,
    "load8_s": 120, "load8_u": 120, "load16_s": 120, "load16_u": 120, "load32_s": 120, "load32_u": 120,
    "load": 120, "store8": 120, "store16": 120, "store32": 120, "store": 120,
    "grow_memory": 10000, "current_memory": 100, "nop": 1, "block": 1, "loop": 1, "if": 1, "then": 90,
    "else": 90, "br": 90, "br_if": 90, "br_table": 120, "return": 90, "call": 90, "call_indirect": 10000,
    "const": 1, "add": 45, "sub": 45, "mul": 45, "div_s": 36000, "div_u": 36000, "rem_s": 36000,
    "rem_u": 36000, "and": 45, "or": 45, "xor": 45, "shl": 67, "shr_u": 67, "shr_s": 67, "rotl": 90,
    "rotr": 90, "eq": 45, "eqz": 45, "ne": 45, "lt_s": 45, "lt_u": 45, "le_s": 45, "le_u": 45, "gt_s": 45,
    "gt_u": 45, "ge_s": 45, "ge_u": 45, "clz": 45, "ctz": 45, "popcnt": 45, "drop": 120, "select": 120,
    "unreachable": 1,
}
BRANCHING = frozenset({"grow_memory", "end", "br", "br_table", "br_if", "if", "else", "return", "loop"})
OVERHEAD = COST["const"] + COST["call"]          # the metering statement metered by the same table

# the opcodes wasm-json-toolkit knows, in its (pre-2019) names
_NUMERIC = (
    "i32.eqz i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u i32.ge_s i32.ge_u "
    "i64.eqz i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s i64.gt_u i64.le_s i64.le_u i64.ge_s i64.ge_u "
    "f32.eq f32.ne f32.lt f32.gt f32.le f32.ge f64.eq f64.ne f64.lt f64.gt f64.le f64.ge "
    "i32.clz i32.ctz i32.popcnt i32.add i32.sub i32.mul i32.div_s i32.div_u i32.rem_s i32.rem_u i32.and "
    "i32.or i32.xor i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr "
    "i64.clz i64.ctz i64.popcnt i64.add i64.sub i64.mul i64.div_s i64.div_u i64.rem_s i64.rem_u i64.and "
    "i64.or i64.xor i64.shl i64.shr_s i64.shr_u i64.rotl i64.rotr "
    "f32.abs f32.neg f32.ceil f32.floor f32.trunc f32.nearest f32.sqrt f32.add f32.sub f32.mul f32.div "
    "f32.min f32.max f32.copysign f64.abs f64.neg f64.ceil f64.floor f64.trunc f64.nearest f64.sqrt "
    "f64.add f64.sub f64.mul f64.div f64.min f64.max f64.copysign "
    "i32.wrap/i64 i32.trunc_s/f32 i32.trunc_u/f32 i32.trunc_s/f64 i32.trunc_u/f64 i64.extend_s/i32 "
    "i64.extend_u/i32 i64.trunc_s/f32 i64.trunc_u/f32 i64.trunc_s/f64 i64.trunc_u/f64 f32.convert_s/i32 "
    "f32.convert_u/i32 f32.convert_s/i64 f32.convert_u/i64 f32.demote/f64 f64.convert_s/i32 "
    "f64.convert_u/i32 f64.convert_s/i64 f64.convert_u/i64 f64.promote/f32 i32.reinterpret/f32 "
    "i64.reinterpret/f64 f32.reinterpret/i32 f64.reinterpret/i64 "
    "i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s i64.extend32_s").split()
_MEMORY = (
    "i32.load i64.load f32.load f64.load i32.load8_s i32.load8_u i32.load16_s i32.load16_u i64.load8_s "
    "i64.load8_u i64.load16_s i64.load16_u i64.load32_s i64.load32_u i32.store i64.store f32.store "
    "f64.store i32.store8 i32.store16 i64.store8 i64.store16 i64.store32").split()

# immediate kinds
_NONE, _BLOCK, _U32, _BR_TABLE, _CALL, _CALL_INDIRECT, _MEM, _BYTE, _S32, _S64, _F32, _F64 = range(12)


def _opcode_table() -> dict[int, tuple[str, int]]:
    ops: dict[int, tuple[str, int]] = {
        0x00: ("unreachable", _NONE), 0x01: ("nop", _NONE), 0x02: ("block", _BLOCK), 0x03: ("loop", _BLOCK),
        0x04: ("if", _BLOCK), 0x05: ("else", _NONE), 0x0B: ("end", _NONE), 0x0C: ("br", _U32),
        0x0D: ("br_if", _U32), 0x0E: ("br_table", _BR_TABLE), 0x0F: ("return", _NONE), 0x10: ("call", _CALL),
        0x11: ("call_indirect", _CALL_INDIRECT), 0x1A: ("drop", _NONE), 0x1B: ("select", _NONE),
        0x20: ("get_local", _U32), 0x21: ("set_local", _U32), 0x22: ("tee_local", _U32),
        0x23: ("get_global", _U32), 0x24: ("set_global", _U32),
        0x3F: ("current_memory", _BYTE), 0x40: ("grow_memory", _BYTE),
        0x41: ("i32.const", _S32), 0x42: ("i64.const", _S64), 0x43: ("f32.const", _F32), 0x44: ("f64.const", _F64),
    }
    for i, name in enumerate(_MEMORY):
        ops[0x28 + i] = (name, _MEM)
    for i, name in enumerate(_NUMERIC):
        ops[0x45 + i] = (name, _NONE)
    assert max(ops) == 0xC4
    return ops


OPCODES = _opcode_table()
# per opcode byte: (immediate kind, cost, branching) or None (unknown to the toolkit)
_OPS: list[tuple[int, int, bool] | None] = [None] * 256
for _code, (_full, _imm) in OPCODES.items():
    _short = _full.split(".", 1)[1] if "." in _full else _full
    _OPS[_code] = (_imm, COST.get(_short, 0), _short in BRANCHING)

# LANGUAGE_TYPES of the toolkit: the value/form bytes it can read back
_TYPE_BYTES = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x70, 0x60, 0x40})
_VALTYPE = {"i32": 0x7F, "i64": 0x7E}
_SECTION_NAMES = ("custom", "type", "import", "function", "table", "memory", "global", "export", "start",
                  "element", "code", "data", "data_count")


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


class _Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None):
        self.buf, self.pos, self.end = buf, pos, len(buf) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise MeteringError(f"unexpected end of the module at byte {self.pos}")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise MeteringError(f"unexpected end of the module at byte {self.pos}")
        self.pos += n
        return self.buf[self.pos - n:self.pos]

    def u(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result

    def s(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result - (1 << shift) if b & 0x40 else result

    def name(self) -> str:
        return self.take(self.u()).decode("utf-8", errors="replace")     # Buffer.toString()


def _js_string(s: str) -> bytes:
    """The toolkit writes a name as (JavaScript length, UTF-8 bytes)."""
    return uleb(len(s.encode("utf-16-le")) // 2) + s.encode("utf-8")


def _valtype(r: _Reader, what: str) -> int:
    b = r.byte()
    if b not in _TYPE_BYTES:
        raise MeteringError(f"{what}: type 0x{b:02x} is unknown to AO's metering pass")
    return b


def _limits(r: _Reader) -> bytes:
    flags = r.u()
    out = uleb(flags) + uleb(r.u())
    if flags % 2 == 1:
        out += uleb(r.u())
    return out


def _op(r: _Reader, out: bytearray, shift_from: int | None = None) -> tuple[int, bool]:
    """Reads one instruction and appends its canonical encoding (a `call` at or above `shift_from`
    moved up by one); returns its (cost, branching)."""
    code = r.byte()
    info = _OPS[code]
    if info is None:
        raise MeteringError(f"opcode 0x{code:02x} at byte {r.pos - 1} is unknown to AO's metering pass "
                            f"(MVP and sign extension only)")
    imm, cost, branching = info
    out.append(code)
    if imm == _NONE:
        pass
    elif imm in (_U32, _CALL):
        v = r.u()
        if imm == _CALL and shift_from is not None and v >= shift_from:
            v += 1
        out += uleb(v)
    elif imm == _MEM:
        out += uleb(r.u())
        out += uleb(r.u())
    elif imm == _S32 or imm == _S64:
        out += sleb(r.s())
    elif imm == _BLOCK:
        out.append(_valtype(r, "block type"))
    elif imm == _BYTE:
        out.append(r.byte())
    elif imm == _F32:
        out += r.take(4)
    elif imm == _F64:
        out += r.take(8)
    elif imm == _BR_TABLE:
        n = r.u()
        out += uleb(n)
        for _ in range(n + 1):
            out += uleb(r.u())
    elif imm == _CALL_INDIRECT:
        out += uleb(r.u())
        out.append(r.byte())
    return cost, branching


def _init_expr(r: _Reader) -> bytes:
    out = bytearray()
    _op(r, out)
    if r.byte() != 0x0B:                # the toolkit reads one op and skips one byte
        raise MeteringError("constant expression of more than one instruction: unknown to AO's metering pass")
    out.append(0x0B)
    return bytes(out)


def _meter_body(r: _Reader, func_index: int, statement_head: bytes, statement_tail: bytes) -> bytes:
    out = bytearray()
    nlocals = r.u()
    out += uleb(nlocals)
    for _ in range(nlocals):
        out += uleb(r.u())
        out.append(_valtype(r, "local"))
    piece = bytearray()
    cost = 0
    while r.pos < r.end:
        c, branching = _op(r, piece, func_index)
        cost += c
        if branching:
            if cost:
                out += statement_head
                out += sleb(cost + OVERHEAD)
                out += statement_tail
            out += piece
            piece.clear()
            cost = 0
    if piece:
        raise MeteringError("function body does not end with `end`")
    return bytes(out)


def meter_wasm(wasm: bytes, meter_type: str = "i32") -> bytes:
    """The module as ao-loader's `metering.meterWASM(wasm, {meterType})` returns it."""
    if meter_type not in METER_TYPES:
        raise MeteringError(f"meter type must be i32 or i64, not {meter_type!r}")
    wasm = bytes(wasm)
    if len(wasm) < 8:
        raise MeteringError("not a wasm module (shorter than its header)")
    r = _Reader(wasm, 8)
    sections: list[tuple[int, object]] = []     # (id, parsed content)
    while r.pos < r.end:
        sid = r.byte()
        size = r.u()
        if sid >= len(_SECTION_NAMES):
            raise MeteringError(f"section id {sid} is unknown to AO's metering pass")
        end = r.pos + size
        if end > len(wasm):
            raise MeteringError(f"section {_SECTION_NAMES[sid]} runs past the end of the module")
        sections.append((sid, _parse_section(sid, _Reader(wasm, r.pos, end))))
        r.pos = end
    return _generate(wasm[:8], sections, meter_type)


def _parse_section(sid: int, r: _Reader) -> object:
    """A section as the toolkit reads it (entries re-encoded canonically where nothing moves)."""
    if sid == 0:
        name = r.name()
        return (name, r.buf[r.pos:r.end])
    if sid == 8:
        v = r.u()
        _done(r, sid)
        return v
    if sid == 12:
        v = r.u()
        _done(r, sid)
        return v
    n = r.u()
    entries: list = []
    for _ in range(n):
        if sid == 1:
            form = _valtype(r, "type form")
            params = bytes(_valtype(r, "parameter") for _ in range(r.u()))
            nres = r.u()
            if nres > 1:
                raise MeteringError("function type with several results: unknown to AO's metering pass")
            res = bytes([_valtype(r, "result")]) if nres else b""
            entries.append(bytes([form]) + uleb(len(params)) + params + bytes([len(res)]) + res)
        elif sid == 2:
            mod, field = r.name(), r.name()
            kind = r.byte()
            if kind == 0:
                desc = r.u()
            elif kind == 1:
                desc = bytes([_valtype(r, "table element")]) + _limits(r)
            elif kind == 2:
                desc = _limits(r)
            elif kind == 3:
                desc = bytes([_valtype(r, "global"), r.byte()])
            else:
                raise MeteringError(f"import kind {kind} is unknown to AO's metering pass")
            entries.append((mod, field, kind, desc))
        elif sid == 3:
            entries.append(r.u())
        elif sid == 4:
            entries.append(bytes([_valtype(r, "table element")]) + _limits(r))
        elif sid == 5:
            entries.append(_limits(r))
        elif sid == 6:
            entries.append(bytes([_valtype(r, "global"), r.byte()]) + _init_expr(r))
        elif sid == 7:
            name = r.name()
            kind = r.byte()
            if kind > 3:
                raise MeteringError(f"export kind {kind} is unknown to AO's metering pass")
            entries.append((name, kind, r.u()))
        elif sid == 9:
            if r.u() != 0:
                raise MeteringError("element segment other than an active one for table 0: unknown to AO's "
                                    "metering pass")
            offset = _init_expr(r)
            entries.append((offset, [r.u() for _ in range(r.u())]))
        elif sid == 10:
            size = r.u()
            if r.pos + size > r.end:
                raise MeteringError("function body runs past the code section")
            entries.append(r.take(size))
        elif sid == 11:
            if r.u() != 0:
                raise MeteringError("data segment other than an active one for memory 0: unknown to AO's "
                                    "metering pass")
            offset = _init_expr(r)
            entries.append(b"\0" + offset + _js_len_bytes(r.take(r.u())))
    _done(r, sid)
    return entries


def _js_len_bytes(data: bytes) -> bytes:
    return uleb(len(data)) + data


def _done(r: _Reader, sid: int) -> None:
    if r.pos != r.end:
        raise MeteringError(f"section {_SECTION_NAMES[sid]}: {r.end - r.pos} bytes left after its entries")


def _vec(entries: list[bytes]) -> bytes:
    return uleb(len(entries)) + b"".join(entries)


def _generate(preamble: bytes, sections: list[tuple[int, object]], meter_type: str) -> bytes:
    ids = [sid for sid, _ in sections]
    for want in (1, 2):                 # createSection: before the first non-custom section with a larger id
        if want not in ids:
            for i, sid in enumerate(ids):
                if sid and want < sid:
                    sections.insert(i, (want, []))
                    ids.insert(i, want)
                    break
    func_index = 0
    for sid, entries in sections:
        if sid == 2:
            for mod, field, kind, _ in entries:
                if mod == "metering" and field == "usegas":
                    raise MeteringError("the module already imports metering.usegas (ao-loader's metering "
                                        "pass refuses it: importing metering function is not allowed)")
                func_index += kind == 0
    meter_type_index = None
    head = bytes([0x41 if meter_type == "i32" else 0x42])
    tail = None
    out = bytearray(preamble)
    for sid, content in sections:
        if sid == 0:
            name, payload = content
            body = _js_string(name) + payload
        elif sid == 1:
            meter_type_index = len(content)
            body = _vec([*content, bytes([0x60, 1, _VALTYPE[meter_type], 0])])
        elif sid == 2:
            items = [_js_string(m) + _js_string(f) + bytes([k]) + (uleb(d) if k == 0 else d)
                     for m, f, k, d in content]
            if meter_type_index is not None:
                items.append(_js_string("metering") + _js_string("usegas") + b"\0" + uleb(meter_type_index))
            else:                       # no type section came first: the toolkit writes no type index
                raise MeteringError("no type section before the import section")
            body = _vec(items)
        elif sid == 3:
            body = _vec([uleb(t) for t in content])
        elif sid in (4, 5, 6):
            body = _vec(content)
        elif sid == 7:
            body = _vec([uleb(len(n.encode())) + n.encode() + bytes([k]) + uleb(i + (k == 0 and i >= func_index))
                         for n, k, i in content])
        elif sid == 8:
            body = uleb(content + (content >= func_index))
        elif sid == 9:
            body = _vec([b"\0" + off + _vec([uleb(e + (e >= func_index)) for e in elems]) for off, elems in content])
        elif sid == 10:
            tail = b"\x10" + uleb(func_index)
            bodies = []
            for raw in content:
                code = _meter_body(_Reader(raw), func_index, head, tail)
                bodies.append(uleb(len(code)) + code)
            body = _vec(bodies)
        elif sid == 11:
            body = _vec(content)
        else:                           # data_count
            body = uleb(content)
        out.append(sid)
        out += uleb(len(body))
        out += body
    return bytes(out)
