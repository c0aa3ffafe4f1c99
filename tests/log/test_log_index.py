"""OffsetIndex and TimeIndex: Kafka's entry formats, lookups, truncation, sanity checks."""

import os
import struct

import pytest

from broker.log.index import OffsetIndex, TimeIndex


@pytest.fixture
def offset_index(tmp_path):
    return OffsetIndex(str(tmp_path / "00000000000000000100.index"), 100, 10 * 8)


@pytest.fixture
def time_index(tmp_path):
    return TimeIndex(str(tmp_path / "00000000000000000100.timeindex"), 100, 10 * 12)


def test_offset_index_file_format_is_relative_offset_and_position_big_endian(offset_index):
    offset_index.append(104, 4096)
    offset_index.append(110, 9000)
    assert not os.path.exists(offset_index.path)  # entries are queued, not yet written
    offset_index.flush()
    with open(offset_index.path, "rb") as f:
        assert f.read() == struct.pack(">iiii", 4, 4096, 10, 9000)


def test_offset_index_lookup_is_floor_entry(offset_index):
    assert offset_index.lookup(150) == (100, 0)
    offset_index.append(104, 4096)
    offset_index.append(110, 9000)
    assert offset_index.lookup(103) == (100, 0)
    assert offset_index.lookup(104) == (104, 4096)
    assert offset_index.lookup(109) == (104, 4096)
    assert offset_index.lookup(10**9) == (110, 9000)


def test_offset_index_rejects_non_increasing_entries(offset_index):
    offset_index.append(104, 4096)
    with pytest.raises(AssertionError):
        offset_index.append(104, 5000)
    with pytest.raises(AssertionError):
        offset_index.append(105, 4096)


def test_offset_index_full_and_truncate(offset_index):
    for i in range(10):
        offset_index.append(101 + i, 100 * (i + 1))
    assert offset_index.is_full
    offset_index.truncate_to(105)
    assert offset_index.entries() == [(101, 100), (102, 200), (103, 300), (104, 400)]
    assert os.path.getsize(offset_index.path) == 4 * 8
    assert not offset_index.is_full


def test_offset_index_load_and_sanity(offset_index, tmp_path):
    offset_index.append(104, 4096)
    offset_index.append(110, 9000)
    offset_index.close()
    again = OffsetIndex(offset_index.path, 100, 80)
    assert again.load(log_size=10000)
    assert again.entries() == [(104, 4096), (110, 9000)]
    assert not again.load(log_size=9000)  # position past the end of the log
    with open(offset_index.path, "ab") as f:
        f.write(b"\x00\x00\x00")  # torn entry
    assert not again.load(log_size=10000)
    assert again.entries() == []
    with open(offset_index.path, "wb") as f:
        f.write(struct.pack(">iiii", 10, 9000, 4, 4096))  # not increasing
    assert not again.load(log_size=10000)
    assert not OffsetIndex(str(tmp_path / "missing.index"), 0, 80).load(0)


def test_time_index_keeps_only_growing_timestamps(time_index):
    time_index.maybe_append(5000, 101)
    time_index.maybe_append(5000, 102)
    time_index.maybe_append(4000, 103)
    time_index.maybe_append(6000, 103)
    assert time_index.entries() == [(5000, 101), (6000, 103)]
    time_index.close()
    with open(time_index.path, "rb") as f:
        assert f.read() == struct.pack(">qiqi", 5000, 1, 6000, 3)


def test_time_index_lookup_truncate_and_load(time_index):
    assert time_index.lookup(10) == (-1, 100)
    for i in range(1, 5):
        time_index.maybe_append(1000 * i, 100 + 10 * i)
    assert time_index.lookup(999) == (-1, 100)
    assert time_index.lookup(2500) == (2000, 120)
    assert time_index.last_entry == (4000, 140)
    time_index.truncate_to(130)
    assert time_index.entries() == [(1000, 110), (2000, 120)]
    time_index.close()
    again = TimeIndex(time_index.path, 100, 120)
    assert again.load(0) and again.entries() == [(1000, 110), (2000, 120)]
    with open(time_index.path, "wb") as f:
        f.write(struct.pack(">qiqi", 2000, 1, 1000, 2))
    assert not again.load(0)


def test_time_index_final_entry_may_exceed_max_entries(time_index):
    for i in range(10):
        time_index.maybe_append(i + 1, 100 + i)
    assert time_index.is_full
    time_index.maybe_append(99, 120, skip_full_check=True)
    assert len(time_index) == 11


def test_queued_entries_reach_the_file_in_4_kib_writes(offset_index):
    offset_index.max_entries = 10_000
    for i in range(600):
        offset_index.append(101 + i, 10 * (i + 1))
    assert os.path.getsize(offset_index.path) == 4096
    offset_index.truncate_to(101 + 550)
    assert os.path.getsize(offset_index.path) == 550 * 8
    offset_index.append(101 + 550, 10 * 551)
    offset_index.close()
    again = OffsetIndex(offset_index.path, 100, 10**6)
    assert again.load(10**6) and again.entries() == offset_index.entries()


def test_flush_and_delete(offset_index):
    offset_index.append(101, 100)
    offset_index.flush()
    offset_index.close()
    offset_index.delete()
    offset_index.delete()
