"""LogSegment: append, bounded whole-batch reads, lookups, truncation, recovery."""

import os

import pytest
from log_helpers import expected_offset_index, make_batch, scan_file

from broker.log import segment as segment_module
from broker.log.log_config import LogConfig
from broker.log.segment import BatchInfo, LogSegment, segment_file_name
from protocol.batch import parse_header, set_base_offset_and_epoch
from protocol.records import decode_batch

CONFIG = LogConfig(index_interval_bytes=300)


def append(segment, n_records=3, *, timestamp=1000, value_size=40, now_ms=0):
    """Append one batch at the segment's next offset; returns its header."""
    data = bytearray(make_batch(n_records, timestamp=timestamp, value_size=value_size))
    set_base_offset_and_epoch(data, 0, segment.next_offset, 0)
    header = parse_header(data)
    info = BatchInfo(header.base_offset, header.last_offset, header.max_timestamp, header.size)
    segment.append([bytes(data)], [info], now_ms)
    return header


@pytest.fixture
def segment(tmp_path):
    seg = LogSegment.create(str(tmp_path), 100, CONFIG, now_ms=0)
    yield seg
    seg.close()


def fill(segment, batches=20):
    return [append(segment, 1 + i % 4, timestamp=1000 + 10 * i) for i in range(batches)]


def test_file_names_are_twenty_digit_base_offsets(segment, tmp_path):
    assert segment_file_name(100, ".log") == "00000000000000000100.log"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "00000000000000000100.index",
        "00000000000000000100.log",
        "00000000000000000100.timeindex",
    ]


def test_append_builds_sparse_indexes_by_kafkas_rule(segment):
    headers = fill(segment)
    assert segment.next_offset == headers[-1].last_offset + 1
    batches = scan_file(segment.path)
    assert [h for _, h in batches] == headers
    assert segment.offset_index.entries() == expected_offset_index(batches, 300)
    assert len(segment.offset_index) >= 3
    assert segment.max_timestamp == max(h.max_timestamp for h in headers)


def test_read_returns_whole_batches_within_max_bytes(segment):
    headers = fill(segment)
    target = headers[5]
    mid = target.base_offset + target.last_offset_delta  # last record of batch 5
    found = segment.read(mid, 500)
    assert found.first_offset == target.base_offset
    assert found.size <= 500 and found.size == len(found.records)
    sizes, pos = [], 0
    while pos < found.size:
        sizes.append(parse_header(found.records, pos).size)
        pos += sizes[-1]
    assert pos == found.size
    assert sum(sizes) + headers[5 + len(sizes)].size > 500


def test_read_min_one_returns_oversized_first_batch(segment):
    fill(segment, 3)
    big = append(segment, 5, value_size=1000)
    found = segment.read(big.base_offset, 100)
    assert found.size == big.size and found.first_offset == big.base_offset
    empty = segment.read(big.base_offset, 100, min_one=False)
    assert empty.size == 0 and empty.records == b""


def test_read_excludes_batches_at_or_after_max_offset(segment):
    headers = fill(segment, 6)
    straddled = headers[3]
    assert straddled.last_offset_delta > 0
    found = segment.read(headers[0].base_offset, 10**6, max_offset=straddled.base_offset + 1)
    assert found.size == sum(h.size for h in headers[:3])
    assert segment.read(straddled.base_offset, 10**6, max_offset=straddled.base_offset).size == 0


def test_read_past_end_or_max_position_is_none(segment):
    headers = fill(segment, 4)
    assert segment.read(headers[-1].last_offset + 1, 1000) is None
    assert segment.read(headers[2].base_offset, 1000, max_position=headers[0].size) is None


def test_reads_are_bounded_preads(segment, monkeypatch):
    fill(segment, 40)
    sizes = []
    real = segment._pread
    monkeypatch.setattr(segment, "_pread", lambda n, pos: sizes.append(n) or real(n, pos))
    segment.read(segment.next_offset - 1, 200)
    segment.read(120, 1000)
    assert sizes and max(sizes) <= max(1000, segment_module.SCAN_CHUNK)
    assert segment.size > segment_module.SCAN_CHUNK or max(sizes) < segment.size


def test_find_offset_by_timestamp_finds_exact_record(segment):
    for i in range(10):
        append(segment, 4, timestamp=1000 + 100 * i)
    # batch i holds timestamps 1000+100i .. 1000+100i+3
    assert segment.find_offset_by_timestamp(1502, 0) == (100 + 5 * 4 + 2, 1502)
    assert segment.find_offset_by_timestamp(1504, 0) == (100 + 6 * 4, 1600)
    assert segment.find_offset_by_timestamp(0, 0) == (100, 1000)
    assert segment.find_offset_by_timestamp(0, 103) == (103, 1003)
    assert segment.find_offset_by_timestamp(5000, 0) is None


def test_truncate_to_mid_batch_removes_the_whole_batch(segment):
    headers = fill(segment, 10)
    cut = headers[6]
    removed = segment.truncate_to(cut.base_offset + 1)
    assert removed == sum(h.size for h in headers[6:])
    assert segment.next_offset == cut.base_offset
    assert segment.max_timestamp == max(h.max_timestamp for h in headers[:6])
    batches = scan_file(segment.path)
    assert segment.offset_index.entries() == expected_offset_index(batches, 300)
    again = append(segment, 2)
    assert again.base_offset == cut.base_offset
    assert segment.offset_index.entries() == expected_offset_index(scan_file(segment.path), 300)


def test_recover_cuts_torn_tail_and_rebuilds_same_indexes(segment, tmp_path):
    headers = fill(segment, 12)
    entries = segment.offset_index.entries()
    segment.close()
    with open(segment.path, "ab") as f:
        f.write(make_batch(3)[:50])
    reopened = LogSegment(str(tmp_path), 100, CONFIG, now_ms=0)
    os.unlink(reopened.offset_index.path)
    assert reopened.recover() == 50
    assert reopened.recovery_error and "torn header" in reopened.recovery_error
    assert reopened.next_offset == headers[-1].last_offset + 1
    assert reopened.offset_index.entries() == entries
    reopened.close()


def test_recover_streams_crc_of_batches_larger_than_the_read_chunk(segment, monkeypatch):
    big = append(segment, 50, value_size=200)
    monkeypatch.setattr(segment_module, "VALIDATE_CHUNK", 1024)
    assert big.size > 3 * 1024
    assert segment.recover() == 0 and segment.next_offset == big.last_offset + 1
    with open(segment.path, "r+b") as f:
        f.seek(big.size - 10)
        f.write(b"\xff")
    assert segment.recover() == big.size
    assert "CRC" in segment.recovery_error and segment.next_offset == 100


def test_load_tail_after_close_needs_no_recovery(segment, tmp_path):
    headers = fill(segment, 15)
    segment.finalize()
    segment.close()
    reopened = LogSegment(str(tmp_path), 100, CONFIG, now_ms=0)
    assert reopened.load_tail()
    assert reopened.next_offset == headers[-1].last_offset + 1
    assert reopened.max_timestamp == headers[-1].max_timestamp
    reopened.close()


def test_delete_removes_all_files(segment, tmp_path):
    fill(segment, 2)
    segment.delete()
    assert list(tmp_path.iterdir()) == []


def test_decoded_read_matches_appended_records(segment):
    append(segment, 3, timestamp=7)
    header, records = decode_batch(bytes(segment.read(100, 10**6).records))
    assert header.base_offset == 100
    assert [(r.offset, r.timestamp) for r in records] == [(100, 7), (101, 8), (102, 9)]
