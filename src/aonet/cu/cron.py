"""Cron messages: the implicit ticks AO generates for a process between its scheduled messages.

Pure arithmetic (PROTOCOL.md §5.2, AO CU `loadMessages.js`); nothing here reads a clock or a socket.

Rules, in the order this file applies them:
- `parse_crons(tags)`: each `Cron-Interval: <n>-<unit>` opens a cron; every following
  `Cron-Tag-<Name>: v` adds tag `<Name>: v` to the most recent one. A `Cron-Tag-*` before any
  interval is an error. Units: `block(s)` count blocks; time units (ms, s, m, h, d, w, months, y
  in the spellings of the `ms` library, case-insensitive, decimals allowed) become whole seconds
  (floor), which must be >= 1. **months** (not in AO's `ms` library, where they never fire) are
  defined here as 1/12 of the `ms` library's year: 365.25 d / 12 = 2,629,800 s.
- Origin = the process's SU block (height, timestamp). A block cron fires on a block with
  `height != origin and (height - origin) % n == 0`; a time cron fires on tick `t` with
  `s(t) != s(origin) and (s(t) - s(origin)) % seconds == 0`, where `s(x) = floor(x / 1000)`.
- Between a left boundary L (the last scheduled message, or the origin on a cold start) and a right
  boundary R (the next scheduled message, or `to`/now), ticks are `t = L.timestamp + 1000 k` while
  `t < R`. Blocks with `L < block.timestamp < R` (ascending height) are visited one per tick, at the
  first tick whose second reaches the block's second; a visited block becomes the current block and
  its block crons fire before the tick's time crons. Time crons fire in ascending interval (stable).
- A cron message: `{Owner, From: process owner, Target: process, Tags, Timestamp, Block-Height,
  Cron: true}`, no Id/Nonce/Epoch/Signature. Block crons carry the block's timestamp and height;
  time crons carry `t` and the current block height. Ordinate = the left boundary's nonce.
  Id = `"<i>-<interval>"`, `i` the index in the block-based list or the (sorted) time-based list.
- The tail after the last message is generated only when `s(last) < s(to)` (AO does the same).

Like AO, a second that two boundaries share can tick twice (once from each side, at different
millisecond timestamps); this is deterministic given the log, so every CU agrees.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

CRON_INTERVAL = "Cron-Interval"
_CRON_TAG = re.compile(r"^Cron-Tag-(.+)$", re.S)


class CronError(ValueError):
    """A Cron-Interval / Cron-Tag-* that cannot be read; names the offending tag."""


# the `ms` library's unit spellings -> milliseconds, plus months
_S = 1000
_M = 60 * _S
_H = 60 * _M
_D = 24 * _H
_W = 7 * _D
_Y = 365.25 * _D
_MO = _Y / 12
_UNITS: dict[str, float] = {}
for _names, _ms in (
        (("years", "year", "yrs", "yr", "y"), _Y),
        (("months", "month", "mo"), _MO),
        (("weeks", "week", "w"), _W),
        (("days", "day", "d"), _D),
        (("hours", "hour", "hrs", "hr", "h"), _H),
        (("minutes", "minute", "mins", "min", "m"), _M),
        (("seconds", "second", "secs", "sec", "s"), _S),
        (("milliseconds", "millisecond", "msecs", "msec", "ms"), 1)):
    for _n in _names:
        _UNITS[_n] = _ms
BLOCK_UNITS = ("block", "blocks")
_NUMBER = re.compile(r"^-?(?:\d+)?\.?\d+$")


@dataclass(frozen=True)
class Cron:
    interval: str              # as written in the tag, e.g. "5-minutes"
    unit: str                  # "blocks" or "seconds"
    value: int                 # how many blocks or seconds
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def is_block(self) -> bool:
        return self.unit == "blocks"

    def tag_list(self) -> list[dict]:
        return [{"name": n, "value": v} for n, v in self.tags]


def parse_interval(text: str) -> tuple[str, int]:
    """`"<n>-<unit>"` -> ("blocks", n) or ("seconds", s). Raises CronError."""
    if not isinstance(text, str):
        raise CronError(f"Cron-Interval must be a string, got {text!r}")
    parts = [p.strip() for p in text.split("-")]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise CronError(f"Cron-Interval {text!r} is not '<number>-<unit>' (e.g. '5-minutes', '10-blocks')")
    value, unit = parts[0], parts[1].lower()
    if unit in BLOCK_UNITS:
        if not value.isdigit() or int(value) < 1:
            raise CronError(f"Cron-Interval {text!r}: a block interval is a whole number >= 1")
        return "blocks", int(value)
    if unit not in _UNITS:
        raise CronError(f"Cron-Interval {text!r}: unknown unit {parts[1]!r} (blocks, milliseconds, seconds, "
                        "minutes, hours, days, weeks, months, years)")
    if not _NUMBER.match(value):
        raise CronError(f"Cron-Interval {text!r}: {value!r} is not a number")
    seconds = math.floor(float(value) * _UNITS[unit] / 1000)
    if seconds < 1:
        raise CronError(f"Cron-Interval {text!r}: a time-based cron cannot be less than 1 second")
    return "seconds", seconds


def parse_crons(tags: Iterable) -> list[Cron]:
    """The process's crons in tag order (tags: {name,value} dicts or (name, value) pairs)."""
    crons: list[tuple[str, str, int, list]] = []
    for t in tags:
        name, value = (t["name"], t["value"]) if isinstance(t, dict) else t
        if name == CRON_INTERVAL:
            unit, n = parse_interval(value)
            crons.append((value, unit, n, []))
            continue
        m = _CRON_TAG.match(name)
        if m:
            if not crons:
                raise CronError(f"Unmatched Cron-Tag with no preceding Cron-Interval: {name}")
            crons[-1][3].append((m.group(1), value))
    return [Cron(i, u, n, tuple(ts)) for i, u, n, ts in crons]


@dataclass(frozen=True)
class Block:
    height: int
    timestamp: int             # ms (Arweave's seconds x 1000)


@dataclass(frozen=True)
class CronTick:
    """One generated cron message, before it is shaped for a process."""
    cron: str                  # "<i>-<interval>"
    ordinate: int              # nonce of the left boundary
    timestamp: int             # ms
    block_height: int
    tags: tuple[tuple[str, str], ...]

    def message(self, process_id: str, owner: str) -> dict:
        return {"Owner": owner, "Target": process_id, "From": owner,
                "Tags": [{"name": n, "value": v} for n, v in self.tags],
                "Timestamp": self.timestamp, "Block-Height": self.block_height, "Cron": True}


def _sec(ms: int) -> int:
    return ms // 1000


class CronSchedule:
    """A process's crons plus its origin block: generates the ticks between two boundaries."""

    def __init__(self, crons: Sequence[Cron], origin_height: int, origin_timestamp: int):
        self.crons = tuple(crons)
        self.origin_height = origin_height
        self.origin_timestamp = origin_timestamp
        self.block_based = [c for c in self.crons if c.is_block]
        self.time_based = sorted((c for c in self.crons if not c.is_block), key=lambda c: c.value)

    @classmethod
    def from_tags(cls, tags: Iterable, origin_height: int, origin_timestamp: int) -> "CronSchedule":
        return cls(parse_crons(tags), origin_height, origin_timestamp)

    def __bool__(self) -> bool:
        return bool(self.crons)

    @property
    def has_block_crons(self) -> bool:
        return bool(self.block_based)

    def block_fires(self, cron: Cron, height: int) -> bool:
        return height != self.origin_height and (height - self.origin_height) % cron.value == 0

    def time_fires(self, cron: Cron, timestamp: int) -> bool:
        s, s0 = _sec(timestamp), _sec(self.origin_timestamp)
        return s != s0 and (s - s0) % cron.value == 0

    @staticmethod
    def tail_needed(last_timestamp: int, to_timestamp: int) -> bool:
        """Whether ticks after the last scheduled message up to `to` exist (AO's rule)."""
        return _sec(last_timestamp) < _sec(to_timestamp)

    def between(self, left_timestamp: int, left_height: int, ordinate: int, right_timestamp: int,
                blocks: Sequence[Block] = ()) -> Iterator[CronTick]:
        """Every cron tick strictly between the boundaries, in evaluation order.

        `blocks` may hold any blocks; only those with left < timestamp < right count. Skips over
        ticks where nothing fires, so a long idle gap costs O(fires), not O(seconds).
        """
        if not self.crons or right_timestamp <= left_timestamp:
            return
        n_ticks = -(-(right_timestamp - left_timestamp) // 1000)   # t = L + 1000k < R
        s_left, s0 = _sec(left_timestamp), _sec(self.origin_timestamp)
        pending = sorted((b for b in blocks if left_timestamp < b.timestamp < right_timestamp),
                         key=lambda b: b.height)
        cur_height = left_height
        bi = 0
        k = 0
        while k < n_ticks:
            # next tick where something can happen
            nxt = n_ticks
            if bi < len(pending):
                nxt = min(nxt, max(k, _sec(pending[bi].timestamp) - s_left))
            for c in self.time_based:
                d = (s_left + k - s0) % c.value          # seconds since the last multiple
                kk = k if d == 0 else k + (c.value - d)
                if s_left + kk == s0:                    # the origin second never fires
                    kk += c.value
                nxt = min(nxt, kk)
            if nxt >= n_ticks:
                return
            k = nxt
            t = left_timestamp + 1000 * k
            if bi < len(pending) and _sec(t) >= _sec(pending[bi].timestamp):
                blk = pending[bi]
                bi += 1
                cur_height = blk.height
                for i, c in enumerate(self.block_based):
                    if self.block_fires(c, blk.height):
                        yield CronTick(f"{i}-{c.interval}", ordinate, blk.timestamp, blk.height, c.tags)
            for i, c in enumerate(self.time_based):
                if self.time_fires(c, t):
                    yield CronTick(f"{i}-{c.interval}", ordinate, t, cur_height, c.tags)
            k += 1

    def between_naive(self, left_timestamp: int, left_height: int, ordinate: int, right_timestamp: int,
                      blocks: Sequence[Block] = ()) -> Iterator[CronTick]:
        """The same ticks, one loop iteration per second: the reference `between` is tested against."""
        pending = sorted((b for b in blocks if left_timestamp < b.timestamp < right_timestamp),
                         key=lambda b: b.height)
        cur_height = left_height
        t = left_timestamp
        while t < right_timestamp:
            if pending and _sec(t) >= _sec(pending[0].timestamp):
                blk = pending.pop(0)
                cur_height = blk.height
                for i, c in enumerate(self.block_based):
                    if self.block_fires(c, blk.height):
                        yield CronTick(f"{i}-{c.interval}", ordinate, blk.timestamp, blk.height, c.tags)
            for i, c in enumerate(self.time_based):
                if self.time_fires(c, t):
                    yield CronTick(f"{i}-{c.interval}", ordinate, t, cur_height, c.tags)
            t += 1000
