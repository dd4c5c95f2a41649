"""The local block clock: block height as a pure function of time.

A devnet has no miners, yet AO needs a `Block-Height` on every assignment, a `block` on every
process and a `blocks(...)` query on the gateway (block-based crons). Every unit that reads the
same `BlockClock` (same genesis, same interval) agrees on every height, id and timestamp without
talking to each other:

    height(t)      = max(0, (t - genesis_ms) // interval_ms)
    start_ms(h)    = genesis_ms + h * interval_ms
    block_id(h)    = base64url(SHA-256("aonet-block" | genesis_ms | interval_ms | h))   (43 chars)

Arweave's `block.timestamp` is in seconds: `Block.timestamp` is `start_ms // 1000`.
Heights travel as 12-digit zero-padded strings in SU tags (`format_height`).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from .encoding import b64url_encode

DEFAULT_GENESIS_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z: fixed, so every devnet agrees
DEFAULT_INTERVAL_MS = 2_000             # a devnet block every 2 s (Arweave: ~120 s)
HEIGHT_DIGITS = 12


def format_height(height: int) -> str:
    """AO's Block-Height tag form: 12 digits, zero padded (`000001393008`)."""
    if height < 0:
        raise ValueError(f"block height cannot be negative: {height}")
    return f"{height:0{HEIGHT_DIGITS}d}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Block:
    height: int
    id: str
    timestamp: int       # seconds, as Arweave's GraphQL `block.timestamp`
    start_ms: int        # the millisecond the block opened
    previous: str | None  # id of height-1, None for genesis


@dataclass(frozen=True)
class BlockClock:
    genesis_ms: int = DEFAULT_GENESIS_MS
    interval_ms: int = DEFAULT_INTERVAL_MS

    def __post_init__(self) -> None:
        if self.interval_ms <= 0:
            raise ValueError(f"block interval must be positive, got {self.interval_ms} ms")

    def height_at(self, ms: int) -> int:
        return max(0, (ms - self.genesis_ms) // self.interval_ms)

    def start_ms(self, height: int) -> int:
        return self.genesis_ms + height * self.interval_ms

    def block_id(self, height: int) -> str:
        seed = f"aonet-block|{self.genesis_ms}|{self.interval_ms}|{height}".encode()
        return b64url_encode(hashlib.sha256(seed).digest())

    def block(self, height: int) -> Block:
        if height < 0:
            raise ValueError(f"block height cannot be negative: {height}")
        start = self.start_ms(height)
        return Block(height, self.block_id(height), start // 1000, start,
                     self.block_id(height - 1) if height else None)

    def block_at(self, ms: int) -> Block:
        return self.block(self.height_at(ms))

    def current_height(self) -> int:
        return self.height_at(now_ms())
