"""Reading a large log through Log.read keeps memory bounded by max_bytes, not log size."""

from __future__ import annotations

import tracemalloc

import pytest

from broker.log.log import Log
from broker.log.log_config import LogConfig
from protocol.batch import batch_size_at, parse_header
from protocol.records import build_batch

MiB = 1024 * 1024
READ_BYTES = MiB
PEAK_BYTES_MAX = 8 * MiB
"""A few read buffers and the lazily loaded indexes; far below any log size tested."""


def build_log(directory, total_bytes: int, segment_bytes: int) -> None:
    """Append one pre-built 256 KiB batch until the log holds ``total_bytes``."""
    batch = build_batch([(None, bytes(1024), [], 1000 + i) for i in range(250)])
    config = LogConfig(segment_bytes=segment_bytes, retention_ms=-1)
    log = Log(directory, config, now_ms=0)
    for _ in range(total_bytes // len(batch)):
        log.append_as_leader(batch, 0, now_ms=0)
    log.close()


def last_offset_in(data) -> int:
    pos, last = 0, -1
    while pos < len(data):
        last = parse_header(data, pos).last_offset
        pos += batch_size_at(data, pos)
    return last


def read_everything(directory, segment_bytes: int) -> tuple[int, int]:
    """Open cold and read the whole log sequentially; returns (bytes read, peak growth)."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        log = Log(directory, LogConfig(segment_bytes=segment_bytes, retention_ms=-1), now_ms=0)
        offset, total = 0, 0
        while offset < log.log_end_offset:
            result = log.read(offset, READ_BYTES)
            assert 0 < result.size <= READ_BYTES
            total += result.size
            offset = last_offset_in(result.data) + 1
            del result
        size = log.size
        log.close()
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert total == size
    return total, peak


def test_reading_64_mib_log_stays_bounded(tmp_path):
    directory = tmp_path / "big-0"
    build_log(directory, 64 * MiB, segment_bytes=16 * MiB)
    total, peak = read_everything(directory, 16 * MiB)
    assert total > 60 * MiB
    assert peak < PEAK_BYTES_MAX, f"peak {peak / MiB:.1f} MiB reading {total / MiB:.0f} MiB"


@pytest.mark.soak
def test_reading_1_gib_log_stays_bounded(tmp_path):
    directory = tmp_path / "huge-0"
    build_log(directory, 1024 * MiB, segment_bytes=256 * MiB)
    total, peak = read_everything(directory, 256 * MiB)
    assert total > 1000 * MiB
    assert peak < PEAK_BYTES_MAX, f"peak {peak / MiB:.1f} MiB reading {total / MiB:.0f} MiB"
