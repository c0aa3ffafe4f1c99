"""Helpers for the storage tests: batches, and checks that a log agrees with its files."""

from __future__ import annotations

from pathlib import Path

from broker.log.log import Log
from protocol.batch import HEADER_SIZE, BatchHeader, parse_header
from protocol.records import build_batch


def make_batch(
    n: int = 1,
    *,
    value_size: int = 10,
    timestamp: int = 1000,
    key: bytes = b"k",
    epoch: int = -1,
    base_offset: int = 0,
) -> bytes:
    """A CRC-correct batch of ``n`` records with timestamps timestamp, timestamp+1, ..."""
    records = [(key, b"x" * value_size, [], timestamp + i) for i in range(n)]
    return build_batch(records, base_offset=base_offset, partition_leader_epoch=epoch)


def scan_file(path: str | Path) -> list[tuple[int, BatchHeader]]:
    """(position, header) of every batch in a small log file, read whole (tests only)."""
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        assert len(data) - pos >= HEADER_SIZE, f"{path}: torn header at {pos}"
        header = parse_header(data, pos)
        assert pos + header.size <= len(data), f"{path}: torn batch at {pos}"
        out.append((pos, header))
        pos += header.size
    return out


def expected_offset_index(
    batches: list[tuple[int, BatchHeader]], interval_bytes: int
) -> list[tuple[int, int]]:
    """The offset index Kafka's rule gives for these batches."""
    entries, last = [], 0
    for pos, header in batches:
        if pos - last > interval_bytes:
            entries.append((header.last_offset, pos))
            last = pos
    return entries


def assert_log_consistent(log: Log, *, exact_indexes: bool = True) -> list[BatchHeader]:
    """Offsets dense across segments, indexes agree with a scan, end offset right.

    Every index entry must point at the batch it names; with ``exact_indexes``
    the offset index must also hold exactly the entries Kafka's rule makes.
    Returns every batch header in order.
    """
    headers: list[BatchHeader] = []
    expected = log.segments[0].base_offset
    interval = log.config.index_interval_bytes
    for segment in log.segments:
        assert segment.base_offset == expected, (segment, expected)
        batches = scan_file(segment.path)
        assert sum(h.size for _, h in batches) == segment.size
        for _, header in batches:
            assert header.base_offset == expected, (segment.path, header.base_offset, expected)
            expected = header.last_offset + 1
            headers.append(header)
        segment.max_timestamp  # noqa: B018 (loads the indexes)
        starts = {pos: h.last_offset for pos, h in batches}
        for offset, pos in segment.offset_index.entries():
            assert starts.get(pos) == offset, (segment.path, offset, pos)
        if exact_indexes:
            assert segment.offset_index.entries() == expected_offset_index(batches, interval)
        _assert_time_index(segment.time_index.entries(), batches)
    assert log.log_end_offset == expected
    return headers


def _assert_time_index(
    entries: list[tuple[int, int]], batches: list[tuple[int, BatchHeader]]
) -> None:
    by_last_offset = {h.last_offset: h for _, h in batches}
    running_max, max_at = -1, {}
    for _, header in batches:
        running_max = max(running_max, header.max_timestamp)
        max_at[header.last_offset] = running_max
    previous = None
    for timestamp, offset in entries:
        assert offset in by_last_offset, (timestamp, offset)
        assert by_last_offset[offset].max_timestamp == timestamp
        assert max_at[offset] == timestamp
        if previous is not None:
            assert timestamp > previous[0] and offset >= previous[1]
        previous = (timestamp, offset)
