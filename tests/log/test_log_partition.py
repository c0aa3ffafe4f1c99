"""Log: leader/follower appends, reads, ListOffsets, roll, retention, truncation, flush."""

import logging

import pytest
from log_helpers import assert_log_consistent, make_batch

from broker.log.log import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    Log,
    OffsetOutOfRange,
    RecordBatchTooLarge,
    UnexpectedAppendOffset,
)
from broker.log.log_config import LogConfig
from broker.log.segment import LogSegment
from protocol.batch import CorruptBatchError, InvalidBatchError, iter_batches, validate_batch

SMALL = LogConfig(segment_bytes=2000, index_interval_bytes=200, retention_ms=-1)


@pytest.fixture
def open_log(tmp_path):
    logs = []

    def opener(config=SMALL, name="orders-0", now_ms=0):
        log = Log(tmp_path / name, config, now_ms)
        logs.append(log)
        return log

    yield opener
    for log in logs:
        log.close()


def headers_of(data):
    return [h for _, h in iter_batches(data)]


def test_leader_append_assigns_offsets_and_epoch_without_touching_crc(open_log):
    log = open_log()
    first = make_batch(3, base_offset=999, epoch=42)
    info = log.append_as_leader(first + make_batch(2), leader_epoch=5, now_ms=0)
    assert (info.first_offset, info.last_offset, info.num_batches, info.num_records) == (0, 4, 2, 5)
    assert first == make_batch(3, base_offset=999, epoch=42)  # caller's bytes untouched
    result = log.read(0, 10**6)
    headers = headers_of(result.data)  # validates CRCs
    assert [(h.base_offset, h.partition_leader_epoch) for h in headers] == [(0, 5), (3, 5)]
    assert log.log_end_offset == 5 and log.epoch_cache.entries == [(5, 0)]
    log.append_as_leader(make_batch(1), leader_epoch=7, now_ms=0)
    assert log.epoch_cache.entries == [(5, 0), (7, 5)]
    assert_log_consistent(log)


def test_leader_append_rejects_whole_buffer_on_any_bad_batch(open_log):
    log = open_log()
    bad = bytearray(make_batch(2))
    bad[-1] ^= 1
    with pytest.raises(CorruptBatchError):
        log.append_as_leader(make_batch(1) + bytes(bad), 0, 0)
    with pytest.raises(InvalidBatchError, match="exceeds"):
        log.append_as_leader(make_batch(1, value_size=SMALL.max_message_bytes), 0, 0)
    with pytest.raises(RecordBatchTooLarge):
        log.append_as_leader(make_batch(10, value_size=300), 0, 0)
    assert log.log_end_offset == 0 and log.size == 0


def test_empty_append_writes_nothing(open_log):
    log = open_log()
    info = log.append_as_leader(b"", 0, 0)
    assert info.num_batches == 0 and log.log_end_offset == 0


def test_follower_append_keeps_offsets_and_requires_continuity(open_log):
    log = open_log()
    data = make_batch(2, base_offset=0, epoch=3) + make_batch(1, base_offset=2, epoch=4)
    info = log.append_as_follower(data, now_ms=0)
    assert (info.first_offset, info.last_offset) == (0, 2)
    assert bytes(log.read(0, 10**6).data) == data
    assert log.epoch_cache.entries == [(3, 0), (4, 2)]
    with pytest.raises(UnexpectedAppendOffset, match="expected 3"):
        log.append_as_follower(make_batch(1, base_offset=5), now_ms=0)
    with pytest.raises(UnexpectedAppendOffset):
        log.append_as_follower(make_batch(1, base_offset=3) + make_batch(1, base_offset=9), 0)
    assert log.log_end_offset == 3


def test_read_bounds_and_high_watermark(open_log):
    log = open_log()
    for _ in range(30):
        log.append_as_leader(make_batch(3, value_size=30), 0, 0)
    assert len(log.segments) >= 3
    with pytest.raises(OffsetOutOfRange):
        log.read(91, 100)
    with pytest.raises(OffsetOutOfRange):
        log.read(-1, 100)
    assert log.read(90, 100).size == 0
    hw = 31  # inside the batch 30..32
    result = log.read(27, 10**6, max_offset=hw)
    assert [h.base_offset for h in headers_of(result.data)][-1] == 27
    assert log.read(30, 10**6, max_offset=hw).size == 0
    offset, seen = 0, []
    while offset < log.log_end_offset:
        result = log.read(offset, 150)
        assert result.size == len(result.data) > 0 and result.path is not None
        assert result.position >= 0
        headers = headers_of(result.data)
        seen += [h.base_offset for h in headers]
        offset = headers[-1].last_offset + 1
    assert seen == list(range(0, 90, 3))


def test_read_never_spans_segments(open_log):
    log = open_log()
    for _ in range(30):
        log.append_as_leader(make_batch(3, value_size=30), 0, 0)
    second = log.segments[1]
    result = log.read(second.base_offset - 3, 10**6)
    assert headers_of(result.data)[-1].last_offset == second.base_offset - 1


def test_roll_by_index_full(open_log):
    log = open_log(LogConfig(index_interval_bytes=0, segment_index_bytes=48))
    for _ in range(8):
        log.append_as_leader(make_batch(1), 0, now_ms=0)
    assert len(log.segments) == 2  # batches 2..7 made 6 entries of 8 bytes: full
    assert log.segments[0].offset_index.is_full
    assert_log_consistent(log)


def test_roll_by_time_counts_from_first_append(open_log):
    log = open_log(LogConfig(segment_ms=100))
    log.append_as_leader(make_batch(1), 0, now_ms=10)
    log.append_as_leader(make_batch(1), 0, now_ms=110)
    assert len(log.segments) == 1
    log.append_as_leader(make_batch(1), 0, now_ms=111)
    assert len(log.segments) == 2 and log.active_segment.base_offset == 2
    assert not log.maybe_roll(now_ms=211)
    assert log.maybe_roll(now_ms=212)
    assert log.active_segment.size == 0 and not log.maybe_roll(now_ms=10**6)
    assert log.roll(now_ms=10**6) is log.active_segment


def test_roll_by_size(open_log):
    log = open_log(LogConfig(segment_bytes=1000))
    batch = make_batch(1, value_size=100)
    for _ in range(20):
        log.append_as_leader(batch, 0, 0)
    assert all(s.size <= 1000 for s in log.segments)
    assert all(s.size + len(batch) > 1000 for s in log.segments[:-1])
    assert_log_consistent(log)


def test_retention_ms_deletes_expired_segments_and_rolls_when_all_expired(open_log):
    log = open_log(LogConfig(segment_bytes=1000, retention_ms=1000))
    for i in range(12):
        log.append_as_leader(make_batch(2, value_size=100, timestamp=i * 100), 1, now_ms=0)
    log.append_as_leader(make_batch(1, timestamp=5000), 2, now_ms=0)
    count = len(log.segments)
    assert log.delete_retention(now_ms=2000) >= 1
    assert len(log.segments) < count
    assert log.log_start_offset == log.segments[0].base_offset > 0
    assert log.epoch_cache.entries[0][1] == log.log_start_offset
    with pytest.raises(OffsetOutOfRange):
        log.read(0, 100)
    end = log.log_end_offset
    log.delete_retention(now_ms=10**6)
    assert len(log.segments) == 1 and log.active_segment.size == 0
    assert log.log_start_offset == log.log_end_offset == end
    assert log.read(end, 100).size == 0
    assert log.append_as_leader(make_batch(1), 2, now_ms=0).first_offset == end


def test_retention_bytes_and_high_watermark_bound(open_log):
    log = open_log(LogConfig(segment_bytes=1000, retention_bytes=2500, retention_ms=-1))
    for _ in range(30):
        log.append_as_leader(make_batch(1, value_size=150), 0, 0)
    assert log.delete_retention(0, high_watermark=0) == 0
    deleted = log.delete_retention(0)
    assert deleted > 0 and log.size <= 2500 + log.segments[0].size
    assert log.size - log.segments[0].size < 2500
    assert_log_consistent(log)


def test_log_start_offset_moves_up_and_old_segments_go(open_log, tmp_path):
    log = open_log()
    for _ in range(30):
        log.append_as_leader(make_batch(3, value_size=30), 0, 0)
    assert log.increment_log_start_offset(log.segments[2].base_offset + 1)
    assert not log.increment_log_start_offset(5)
    with pytest.raises(OffsetOutOfRange):
        log.read(log.segments[2].base_offset, 100)
    assert log.delete_retention(0) == 2
    assert log.log_start_offset > log.segments[0].base_offset
    start = log.log_start_offset
    log.close()
    assert f"orders 0 {start}" in (tmp_path / "log-start-offset-checkpoint").read_text()
    assert Log(tmp_path / "orders-0", SMALL, 0).log_start_offset == start


def test_truncate_to_across_segments(open_log, tmp_path):
    log = open_log()
    for epoch in range(30):
        log.append_as_leader(make_batch(3, value_size=30), epoch // 10, 0)
    log.flush()
    assert log.recovery_point == 90
    assert log.truncate_to(31, now_ms=0)
    assert log.log_end_offset == 30  # the batch 30..32 went whole
    assert log.recovery_point == 30
    assert "orders 0 30" in (tmp_path / "recovery-point-offset-checkpoint").read_text()
    assert log.epoch_cache.entries == [(0, 0)]
    assert not log.truncate_to(30, now_ms=0)
    assert log.append_as_leader(make_batch(1), 7, 0).first_offset == 30
    assert log.epoch_cache.entries == [(0, 0), (7, 30)]
    assert_log_consistent(log)


def test_truncate_fully_and_start_at(open_log, tmp_path):
    log = open_log()
    for _ in range(10):
        log.append_as_leader(make_batch(3, value_size=30), 1, 0)
    log.truncate_fully_and_start_at(500, now_ms=0)
    assert (log.log_start_offset, log.log_end_offset, log.epoch_cache.entries) == (500, 500, [])
    assert [s.base_offset for s in log.segments] == [500]
    assert sorted(p.name for p in (tmp_path / "orders-0").glob("*.log")) == [
        "00000000000000000500.log"
    ]
    assert log.append_as_follower(make_batch(2, base_offset=500, epoch=9), 0).last_offset == 501


def test_list_offsets_by_timestamp(open_log):
    log = open_log()
    assert log.fetch_offset_by_timestamp(MAX_TIMESTAMP) is None
    for i in range(20):
        log.append_as_leader(make_batch(3, value_size=30, timestamp=1000 + 10 * i), 0, 0)
    assert log.fetch_offset_by_timestamp(EARLIEST_TIMESTAMP) == (0, -1)
    assert log.fetch_offset_by_timestamp(LATEST_TIMESTAMP) == (60, -1)
    assert log.fetch_offset_by_timestamp(0) == (0, 1000)
    assert log.fetch_offset_by_timestamp(1101) == (31, 1101)
    assert log.fetch_offset_by_timestamp(1103) == (33, 1110)
    assert log.fetch_offset_by_timestamp(1192) == (59, 1192)
    assert log.fetch_offset_by_timestamp(1193) is None
    assert log.fetch_offset_by_timestamp(MAX_TIMESTAMP) == (59, 1192)
    assert log.earliest_offset() == 0 and log.latest_offset() == 60


def test_flush_policy_and_recovery_point_checkpoint(open_log, tmp_path):
    log = open_log(LogConfig(segment_bytes=1000, flush_messages=5, flush_ms=100))
    log.append_as_leader(make_batch(4), 0, 0)
    assert log.recovery_point == 0
    log.append_as_leader(make_batch(1), 0, 0)
    assert log.recovery_point == 5  # flush.messages reached
    log.append_as_leader(make_batch(1), 0, 0)
    log.maybe_flush(now_ms=50)
    assert log.recovery_point == 5
    log.maybe_flush(now_ms=100)
    assert log.recovery_point == 6
    checkpoint = tmp_path / "recovery-point-offset-checkpoint"
    assert not checkpoint.exists()
    for _ in range(10):
        log.append_as_leader(make_batch(1, value_size=200), 0, 0)
    assert len(log.segments) > 1
    log.maybe_flush(now_ms=101)
    assert log.recovery_point >= log.active_segment.base_offset
    assert checkpoint.read_text() == f"0\n1\norders 0 {log.recovery_point}\n"
    log.flush(up_to_offset=3)
    log.flush()
    assert log.recovery_point == log.log_end_offset


def test_clean_reopen_skips_recovery(open_log, tmp_path, monkeypatch):
    log = open_log()
    for _ in range(30):
        log.append_as_leader(make_batch(3, value_size=30, timestamp=77), 0, 0)
    log.close()
    assert "orders 0 90" in (tmp_path / "recovery-point-offset-checkpoint").read_text()

    def no_recovery(self, on_batch=None):
        raise AssertionError(f"{self.path} recovered after a clean close")

    monkeypatch.setattr(LogSegment, "recover", no_recovery)
    again = open_log()
    assert again.log_end_offset == 90 and again.recovery_point == 90
    assert again.active_segment.max_timestamp == 79
    assert again.append_as_leader(make_batch(1), 0, 0).first_offset == 90
    assert_log_consistent(again)


def test_open_deletes_stray_and_orphan_files(tmp_path, caplog):
    directory = tmp_path / "orders-0"
    directory.mkdir()
    for name in [
        "00000000000000000000.log.deleted",
        "00000000000000000007.index",
        "00000000000000000000.log.swap",
        "leader-epoch-checkpoint.tmp",
        "00000000000000000003.timeindex.cleaned",
    ]:
        (directory / name).write_bytes(b"junk")
    (directory / "notes.txt").write_text("kept")
    with caplog.at_level(logging.INFO):
        log = Log(directory, SMALL, 0)
    assert sorted(p.name for p in directory.iterdir()) == [
        "00000000000000000000.index",
        "00000000000000000000.log",
        "00000000000000000000.timeindex",
        "notes.txt",
    ]
    log.close()


def test_corrupt_recovery_checkpoint_means_full_recovery(open_log, tmp_path, caplog):
    log = open_log()
    for _ in range(5):
        log.append_as_leader(make_batch(2), 0, 0)
    log.close()
    (tmp_path / "recovery-point-offset-checkpoint").write_text("garbage")
    with caplog.at_level(logging.WARNING):
        again = open_log()
    assert again.log_end_offset == 10 and again.recovery_point == 0
    assert "recovery-point-offset-checkpoint" in caplog.text


def test_partitions_share_the_data_directory_checkpoints(open_log, tmp_path):
    a, b = open_log(name="orders-0"), open_log(name="orders-1")
    a.append_as_leader(make_batch(2), 0, 0)
    b.append_as_leader(make_batch(3), 0, 0)
    a.close()
    b.close()
    text = (tmp_path / "recovery-point-offset-checkpoint").read_text()
    assert text == "0\n2\norders 0 2\norders 1 3\n"


def test_directory_name_must_be_topic_partition(tmp_path):
    with pytest.raises(ValueError, match="topic"):
        Log(tmp_path / "nopartition", SMALL, 0)


def test_read_slice_is_valid_batches(open_log):
    log = open_log()
    log.append_as_leader(make_batch(3), 0, 0)
    validate_batch(bytes(log.read(1, 100).data))
