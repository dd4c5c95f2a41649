"""Cron arithmetic (PROTOCOL.md §5.2): parsing, firing rules, ordering, and the fast generator vs the
one-tick-per-second reference."""
import random

import pytest

from aonet.cu.cron import Block, Cron, CronError, CronSchedule, parse_crons, parse_interval


def tags(*pairs):
    return [{"name": n, "value": v} for n, v in pairs]


# ---- parsing --------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("10-blocks", ("blocks", 10)), ("1-block", ("blocks", 1)),
    ("1-second", ("seconds", 1)), ("10-seconds", ("seconds", 10)), ("5-s", ("seconds", 5)),
    ("5-minutes", ("seconds", 300)), ("1-minute", ("seconds", 60)), ("2-mins", ("seconds", 120)),
    ("1-hour", ("seconds", 3600)), ("3-hours", ("seconds", 10800)), ("1.5-hours", ("seconds", 5400)),
    ("1-day", ("seconds", 86400)), ("2-days", ("seconds", 172800)),
    ("1-week", ("seconds", 604800)), ("1-year", ("seconds", 31557600)),
    ("1-month", ("seconds", 2629800)), ("2-months", ("seconds", 5259600)),
    ("1500-milliseconds", ("seconds", 1)), ("10-Minutes", ("seconds", 600)), (" 10 - seconds ", ("seconds", 10)),
])
def test_parse_interval(text, expected):
    assert parse_interval(text) == expected


@pytest.mark.parametrize("text", ["", "10", "minutes", "10-fortnights", "0-blocks", "-1-blocks", "1.5-blocks",
                                  "500-milliseconds", "0-seconds", "x-seconds", "1-2-seconds"])
def test_parse_interval_rejects(text):
    with pytest.raises(CronError):
        parse_interval(text)


def test_parse_crons_groups_tags_with_the_latest_interval():
    crons = parse_crons(tags(("Foo", "Bar"), ("Cron-Interval", "10-blocks"), ("Cron-Tag-Foo", "Bar"),
                             ("Cron-Tag-Fizz", "Buzz"), ("Random", "Tag"), ("Cron-Interval", "10-minutes"),
                             ("Cron-Tag-Action", "Tick")))
    assert crons == [Cron("10-blocks", "blocks", 10, (("Foo", "Bar"), ("Fizz", "Buzz"))),
                     Cron("10-minutes", "seconds", 600, (("Action", "Tick"),))]
    assert parse_crons(tags(("Name", "x"))) == []


def test_cron_tag_before_interval_is_an_error():
    with pytest.raises(CronError, match="Cron-Tag-Foo"):
        parse_crons(tags(("Cron-Tag-Foo", "Bar"), ("Cron-Interval", "1-second")))


# ---- firing rules ---------------------------------------------------------------------------
ORIGIN_TS = 1_700_000_000_500   # mid-second on purpose


def schedule(*pairs, origin_height=100, origin_ts=ORIGIN_TS):
    return CronSchedule.from_tags(tags(*pairs), origin_height, origin_ts)


def test_time_cron_fires_on_whole_seconds_from_origin_and_never_on_origin():
    s = schedule(("Cron-Interval", "2-seconds"), ("Cron-Tag-Action", "Tick"))
    ticks = list(s.between(ORIGIN_TS, 100, 0, ORIGIN_TS + 7_000))
    # ticks at origin+1000k, k=0..6; seconds since origin 0..6; fires at 2, 4, 6 (0 excluded)
    assert [t.timestamp - ORIGIN_TS for t in ticks] == [2000, 4000, 6000]
    assert {t.cron for t in ticks} == {"0-2-seconds"}
    assert all(t.ordinate == 0 and t.block_height == 100 for t in ticks)
    msg = ticks[0].message("P" * 43, "OWNER")
    assert msg == {"Owner": "OWNER", "Target": "P" * 43, "From": "OWNER", "Tags": [{"name": "Action", "value": "Tick"}],
                   "Timestamp": ORIGIN_TS + 2000, "Block-Height": 100, "Cron": True}
    assert "Id" not in msg and "Nonce" not in msg


def test_right_boundary_is_exclusive_and_ticks_are_anchored_on_left():
    s = schedule(("Cron-Interval", "1-second"))
    left = ORIGIN_TS + 10_250          # second +10 (ms +750 into it relative to origin's 500)
    ticks = list(s.between(left, 100, 7, left + 3000))
    assert [t.timestamp for t in ticks] == [left, left + 1000, left + 2000]
    assert all(t.ordinate == 7 for t in ticks)
    assert list(s.between(left, 100, 7, left)) == []
    assert [t.timestamp for t in s.between(left, 100, 7, left + 1)] == [left]


def test_time_crons_sorted_by_interval_block_crons_first():
    s = schedule(("Cron-Interval", "2-seconds"), ("Cron-Tag-N", "two"), ("Cron-Interval", "1-second"),
                 ("Cron-Tag-N", "one"), ("Cron-Interval", "1-block"), ("Cron-Tag-N", "blk"))
    blocks = [Block(101, ORIGIN_TS + 1500)]   # second +2 relative to origin second
    ticks = list(s.between(ORIGIN_TS, 100, 0, ORIGIN_TS + 3000, blocks))
    assert [(t.cron, t.timestamp - ORIGIN_TS, t.block_height) for t in ticks] == [
        ("0-1-second", 1000, 100),
        ("0-1-block", 1500, 101), ("0-1-second", 2000, 101), ("1-2-seconds", 2000, 101),
    ]


def test_block_crons_relative_to_origin_height():
    s = schedule(("Cron-Interval", "3-blocks"))
    blocks = [Block(h, ORIGIN_TS + (h - 100) * 2000) for h in range(100, 110)]
    ticks = list(s.between(ORIGIN_TS, 100, 0, ORIGIN_TS + 20_000, blocks))
    assert [t.block_height for t in ticks] == [103, 106, 109]
    assert [t.timestamp for t in ticks] == [ORIGIN_TS + 6000, ORIGIN_TS + 12000, ORIGIN_TS + 18000]
    # blocks outside (left, right) do not count
    assert [t.block_height for t in s.between(ORIGIN_TS + 6000, 103, 0, ORIGIN_TS + 12000, blocks)] == []
    assert [t.block_height for t in s.between(ORIGIN_TS + 5999, 102, 0, ORIGIN_TS + 12001, blocks)] == [103, 106]


def test_one_block_visited_per_tick():
    s = schedule(("Cron-Interval", "1-block"))
    blocks = [Block(101, ORIGIN_TS + 1000), Block(102, ORIGIN_TS + 1100), Block(103, ORIGIN_TS + 1200)]
    ticks = list(s.between(ORIGIN_TS, 100, 0, ORIGIN_TS + 10_000, blocks))
    assert [t.block_height for t in ticks] == [101, 102, 103]    # visited at ticks k=1,2,3


def test_no_crons_no_ticks():
    assert not schedule(("Name", "x"))
    assert list(schedule().between(0, 0, 0, 10**9)) == []


def test_tail_rule():
    assert CronSchedule.tail_needed(1000, 2000)
    assert not CronSchedule.tail_needed(1000, 1999)


def test_shared_second_ticks_from_both_sides_like_ao():
    s = schedule(("Cron-Interval", "1-second"), origin_ts=0)
    first = list(s.between(1500, 0, 1, 1900))
    second = list(s.between(1900, 0, 2, 3000))
    assert [t.timestamp for t in first] == [1500]
    assert [t.timestamp for t in second] == [1900, 2900]


def test_long_gap_is_fast_and_exact():
    s = schedule(("Cron-Interval", "1-hour"), ("Cron-Interval", "1-day"))
    week = 7 * 86400 * 1000
    ticks = list(s.between(ORIGIN_TS, 100, 3, ORIGIN_TS + week))
    assert sum(t.cron == "0-1-hour" for t in ticks) == 7 * 24 - 1
    assert sum(t.cron == "1-1-day" for t in ticks) == 6


@pytest.mark.parametrize("seed", range(40))
def test_fast_generator_matches_reference(seed):
    rng = random.Random(seed)
    pairs = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.35:
            pairs.append(("Cron-Interval", f"{rng.randint(1, 4)}-blocks"))
        else:
            pairs.append(("Cron-Interval", f"{rng.randint(1, 9)}-{rng.choice(['seconds', 'second', 's'])}"))
        pairs.append(("Cron-Tag-Action", f"a{len(pairs)}"))
    origin_ts = rng.randint(10**12, 10**12 + 10**6)
    origin_h = rng.randint(0, 50)
    s = schedule(*pairs, origin_height=origin_h, origin_ts=origin_ts)
    blocks, ts = [], origin_ts
    for h in range(origin_h, origin_h + 30):
        blocks.append(Block(h, ts // 1000 * 1000))
        ts += rng.randint(300, 4000)
    left = origin_ts + rng.randint(-500, 20_000)
    right = left + rng.randint(0, 60_000)
    fast = list(s.between(left, origin_h + 1, 5, right, blocks))
    slow = list(s.between_naive(left, origin_h + 1, 5, right, blocks))
    assert fast == slow
