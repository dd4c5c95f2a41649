"""The block clock: heights, ids and timestamps are pure functions of time."""
import pytest

from aonet.blocks import BlockClock, format_height


def test_height_is_a_pure_function_of_time():
    clock = BlockClock(genesis_ms=1_000_000, interval_ms=2_000)
    assert clock.height_at(999_999) == 0          # before genesis: clamped to 0
    assert clock.height_at(1_000_000) == 0
    assert clock.height_at(1_001_999) == 0
    assert clock.height_at(1_002_000) == 1
    assert clock.height_at(1_000_000 + 2_000 * 77 + 5) == 77
    assert clock.start_ms(77) == 1_000_000 + 2_000 * 77


def test_blocks_are_deterministic_and_linked():
    a, b = BlockClock(genesis_ms=5, interval_ms=10), BlockClock(genesis_ms=5, interval_ms=10)
    assert a.block(3) == b.block(3)
    assert len(a.block_id(3)) == 43 and a.block_id(3) != a.block_id(4)
    assert a.block(4).previous == a.block_id(3) and a.block(0).previous is None
    assert BlockClock(genesis_ms=6, interval_ms=10).block_id(3) != a.block_id(3)
    assert a.block_at(5 + 10 * 9 + 3).height == 9
    assert a.block(9).timestamp == (5 + 90) // 1000


def test_format_height_is_twelve_digits():
    assert format_height(1393008) == "000001393008"
    with pytest.raises(ValueError):
        format_height(-1)
    with pytest.raises(ValueError):
        BlockClock(interval_ms=0)
