"""Dirty-page tracking (userfaultfd + PAGEMAP_SCAN) and paged memory images, on plain mmap memory."""
from __future__ import annotations

import ctypes
import mmap

import pytest

from aonet.vm.dirty import PAGE, DirtyTracker
from aonet.vm.image import PagedImage


def _region(pages: int):
    m = mmap.mmap(-1, pages * PAGE)
    return m, ctypes.addressof(ctypes.c_char.from_buffer(m))


@pytest.fixture()
def tracker():
    t = DirtyTracker.open()
    if t is None:
        pytest.skip("this kernel has no userfaultfd async write-protect + PAGEMAP_SCAN (Linux >= 6.7)")
    return t


def test_tracker_reports_written_pages_once(tracker):
    m, base = _region(64)
    tracker.watch(base, 32 * PAGE)
    m[5 * PAGE] = 1
    m[6 * PAGE + 7] = 1
    m[20 * PAGE] = 1
    m[40 * PAGE] = 1                                   # outside the watched region
    assert tracker.take(base, 32 * PAGE) == [(5 * PAGE, 7 * PAGE), (20 * PAGE, 21 * PAGE)]
    assert tracker.take(base, 32 * PAGE) == []
    m[0] = 9
    # growth counts as written and is watched from then on
    assert tracker.take(base, 48 * PAGE) == [(0, PAGE), (32 * PAGE, 48 * PAGE)]
    m[47 * PAGE] = 1
    assert tracker.take(base, 48 * PAGE) == [(47 * PAGE, 48 * PAGE)]
    assert tracker.take(base + PAGE, 48 * PAGE) is None  # moved: the caller starts over
    assert tracker.take(base, 16 * PAGE) is None         # shrank


def test_tracker_many_runs(tracker):
    m, base = _region(5000)
    tracker.watch(base, 5000 * PAGE)
    for i in range(0, 5000, 2):
        m[i * PAGE] = 1
    runs = tracker.take(base, 5000 * PAGE)
    assert len(runs) == 2500 and runs[-1] == (4998 * PAGE, 4999 * PAGE)


def test_paged_image_tracks_memory(tracker):
    m, base = _region(16)
    m[:] = bytes(range(256)) * (16 * PAGE // 256)
    tracker.watch(base, 16 * PAGE)
    a = PagedImage.from_memory(base, 16 * PAGE)
    assert bytes(a) == m[:]
    m[3 * PAGE + 1] = 0xEE
    b = a.updated(base, 16 * PAGE, tracker.take(base, 16 * PAGE))
    assert bytes(b) == m[:] and bytes(a) != m[:]
    assert [p is q for p, q in zip(a.pages, b.pages)].count(False) == 1
    assert a.updated(base, 16 * PAGE, []) is a
    # write a back: only the page that differs is copied
    assert a.write_into(base, known=b) == PAGE and m[:] == bytes(a)


def test_paged_image_values():
    data = bytes(range(256)) * (4 * PAGE // 256)
    img = PagedImage.from_bytes(data)
    assert len(img) == 4 * PAGE and bytes(img) is bytes(img) and img == data
    assert img == PagedImage(tuple(data[i:i + PAGE] for i in range(0, len(data), PAGE)))
    grown = img.padded(6 * PAGE)
    assert bytes(grown) == data + bytes(2 * PAGE) and img.padded(PAGE) is img
    with pytest.raises(ValueError):
        PagedImage.from_bytes(b"x" * 100)
    with pytest.raises(ValueError):
        PagedImage()
    m, base = _region(4)
    assert img.write_into(base) == 4 * PAGE and m[:] == data
