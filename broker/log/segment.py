"""One log segment: ``<base>.log`` with its ``.index`` and ``.timeindex`` (Kafka's LogSegment).

The ``.log`` file is whole RecordBatch v2 batches back to back, exactly the
bytes a Fetch response carries. The segment never loads its file: lookups
read 61-byte batch headers (a small read-ahead buffer) and seek past bodies,
reads return one bounded ``os.pread``, and recovery streams the file in
chunks while it checks framing and CRC-32C.

Index entries are made per batch by one rule, used both when appending and
when rebuilding, so a rebuilt index equals the original: the batch starting at
position P gets an entry (its last offset, P) when P is more than
index.interval.bytes past the previous entry's position (Kafka's rule).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import crc32c as _crc32c

from broker.log.index import OffsetIndex, TimeIndex
from broker.log.log_config import LogConfig
from protocol.batch import (
    CRC_START,
    HEADER_SIZE,
    MAGIC_V2,
    BatchHeader,
    CorruptBatchError,
    batch_size_at,
    crc32c,
    parse_header,
)

log = logging.getLogger(__name__)

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
OFFSET_DIGITS = 20

SCAN_CHUNK = 16 * 1024
"""Read-ahead of a header-only scan: several small batches' headers per pread."""
VALIDATE_CHUNK = 1024 * 1024
"""Read size of a validating scan; larger batches are checksummed in chunks."""
READ_HINTS_MAX = 64
"""Positions remembered for sequential readers (consumers, followers) per segment."""
_IOV_MAX = 1024
_BASE_OFFSET = struct.Struct(">q")
_LAST_OFFSET_DELTA = struct.Struct(">i")
_LAST_OFFSET_DELTA_AT = 23


def segment_file_name(base_offset: int, suffix: str) -> str:
    """Kafka's file name: the base offset in 20 digits, then the suffix."""
    assert base_offset >= 0, base_offset
    return f"{base_offset:0{OFFSET_DIGITS}d}{suffix}"


class SegmentCorruptError(CorruptBatchError):
    """The segment file holds something other than whole valid batches at ``position``."""

    def __init__(self, path: str, position: int, reason: str) -> None:
        super().__init__(f"{path} at position {position}: {reason}")
        self.path = path
        self.position = position
        self.reason = reason


class BatchInfo(NamedTuple):
    """What a segment needs to know about one batch being appended."""

    base_offset: int
    last_offset: int
    max_timestamp: int
    size: int


class SegmentRead(NamedTuple):
    """Whole batches read from a segment: ``size`` bytes at file ``position``."""

    position: int
    size: int
    records: bytes | memoryview
    first_offset: int


def _pwrite_all(fd: int, chunks: Sequence[bytes | memoryview], position: int) -> None:
    """Write ``chunks`` back to back at ``position``, retrying short writes."""
    pending = list(chunks)
    while pending:
        group = pending[:_IOV_MAX]
        written = os.pwritev(fd, group, position)
        if written == 0 and any(len(c) for c in group):
            raise OSError(f"pwritev wrote nothing at position {position}")
        position += written
        done = 0
        while done < len(group) and written >= len(group[done]):
            written -= len(group[done])
            done += 1
        del pending[:done]
        if written:
            pending[0] = memoryview(pending[0])[written:]


def _whole_batches(data: bytes, max_offset: int | None) -> tuple[int, int]:
    """(bytes, start) of the whole batches at the start of ``data`` ending below
    ``max_offset``; ``start`` is where the last of them begins."""
    pos, last_start, end = 0, 0, len(data)
    while pos + HEADER_SIZE <= end:
        size = batch_size_at(data, pos)
        if size < HEADER_SIZE or pos + size > end:
            break
        if max_offset is not None and _last_offset_at(data, pos) >= max_offset:
            break
        last_start = pos
        pos += size
    return pos, last_start


def _last_offset_at(data: bytes | memoryview, pos: int) -> int:
    base = _BASE_OFFSET.unpack_from(data, pos)[0]
    return base + _LAST_OFFSET_DELTA.unpack_from(data, pos + _LAST_OFFSET_DELTA_AT)[0]


class LogSegment:
    """A segment's three files and what is known about their contents.

    ``next_offset`` (the offset after the last batch) and the maximum timestamp
    are exact for the active segment and for any segment that was scanned; for
    older segments trusted below the recovery point they come lazily from the
    time index, as in Kafka.
    """

    def __init__(self, directory: str, base_offset: int, config: LogConfig, now_ms: int) -> None:
        """Open (creating if missing) the segment's log file; indexes load lazily."""
        self.directory = directory
        self.base_offset = base_offset
        self.path = os.path.join(directory, segment_file_name(base_offset, LOG_SUFFIX))
        self._interval_bytes = config.index_interval_bytes
        index_bytes = config.segment_index_bytes
        self.offset_index = OffsetIndex(
            os.path.join(directory, segment_file_name(base_offset, INDEX_SUFFIX)),
            base_offset,
            index_bytes,
        )
        self.time_index = TimeIndex(
            os.path.join(directory, segment_file_name(base_offset, TIME_INDEX_SUFFIX)),
            base_offset,
            index_bytes,
        )
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        stat = os.fstat(self._fd)
        self.size = stat.st_size
        self.last_modified_ms = stat.st_mtime_ns // 1_000_000 if self.size else now_ms
        self.roll_base_ms = now_ms
        self.next_offset: int | None = None if self.size else base_offset
        self.recovery_error: str | None = None
        self._read_hints: dict[int, int] = {}
        self._indexes_loaded = False
        # Written since the last fsync; unknown for a file found on disk (a crashed
        # process may have left unflushed pages), so the first flush syncs it.
        self._dirty = self.size > 0
        self._reset_tail_state()

    @classmethod
    def create(cls, directory: str, base_offset: int, config: LogConfig, now_ms: int) -> LogSegment:
        """A new empty segment with empty index files (the caller fsyncs the directory)."""
        segment = cls(directory, base_offset, config, now_ms)
        assert segment.size == 0, f"{segment.path} already exists with data"
        segment._reset_indexes()
        return segment

    # -- state ---------------------------------------------------------------

    def _reset_tail_state(self) -> None:
        self._max_timestamp = -1
        self._offset_of_max_timestamp = self.base_offset
        self._last_index_position = 0

    def _reset_indexes(self) -> None:
        self.offset_index.truncate_entries(0)
        self.time_index.truncate_to(self.base_offset)
        self._reset_tail_state()
        self._indexes_loaded = True
        if self.size == 0:
            self.next_offset = self.base_offset

    def _load_indexes(self) -> bool:
        """Load both indexes; False unless both pass the sanity checks.

        Beyond the per-file checks, the first and last offset index entries
        must point at batch headers ending at the offsets they name.
        """
        ok = self.offset_index.load(self.size) & self.time_index.load(self.size)
        ok = ok and all(self._batch_ends_at(pos, off) for off, pos in self.offset_index.ends())
        self._indexes_loaded = ok
        return ok

    def _batch_ends_at(self, position: int, offset: int) -> bool:
        data = self._pread(HEADER_SIZE, position)
        if len(data) < HEADER_SIZE:
            return False
        header = parse_header(data)
        return header.magic == MAGIC_V2 and header.last_offset == offset

    def _ensure_indexes(self) -> None:
        """Load the indexes of a trusted segment, rebuilding them from headers if bad."""
        if self._indexes_loaded:
            return
        if self._load_indexes():
            self._max_timestamp, self._offset_of_max_timestamp = self.time_index.last_entry
            self._last_index_position = self.offset_index.last_entry[1]
            return
        log.warning("%s: index files missing or invalid, rebuilding them from the log", self.path)
        self._reset_indexes()
        for position, header in self._scan(0, self.size, validate=False):
            self._index_batch(_info(header), position)

    @property
    def max_timestamp(self) -> int:
        """Largest batch maxTimestamp in the segment, -1 if none carries one."""
        self._ensure_indexes()
        return self._max_timestamp

    @property
    def offset_of_max_timestamp(self) -> int:
        self._ensure_indexes()
        return self._offset_of_max_timestamp

    @property
    def largest_timestamp(self) -> int:
        """What retention.ms compares: max timestamp, else the file's last modification."""
        ts = self.max_timestamp
        return ts if ts >= 0 else self.last_modified_ms

    @property
    def indexes_full(self) -> bool:
        self._ensure_indexes()
        return self.offset_index.is_full or self.time_index.is_full

    # -- append --------------------------------------------------------------

    def append(
        self, chunks: Sequence[bytes | memoryview], batches: Sequence[BatchInfo], now_ms: int
    ) -> None:
        """Write ``chunks`` (the bytes of ``batches``, in order) at the end of the file.

        The caller has validated the batches and chosen this segment; offsets
        must continue from ``next_offset``. The log is written before the
        indexes, so a crash can leave an index behind the log, never ahead.
        """
        assert batches and self._indexes_loaded, self.path
        assert batches[0].base_offset == self.next_offset, (batches[0], self.next_offset)
        position = self.size
        if position == 0:
            self.roll_base_ms = now_ms
        try:
            _pwrite_all(self._fd, chunks, position)
        except OSError:
            os.ftruncate(self._fd, position)
            raise
        for info in batches:
            self._index_batch(info, position)
            position += info.size
        self.size = position
        self.last_modified_ms = now_ms
        self._dirty = True

    def _index_batch(self, info: BatchInfo, position: int) -> None:
        """Account for one batch at ``position``: max timestamp, index entries, next offset."""
        if info.max_timestamp > self._max_timestamp:
            self._max_timestamp = info.max_timestamp
            self._offset_of_max_timestamp = info.last_offset
        if position - self._last_index_position > self._interval_bytes:
            if not self.offset_index.is_full:
                self.offset_index.append(info.last_offset, position)
                self._last_index_position = position
            if not self.time_index.is_full:
                self.time_index.maybe_append(self._max_timestamp, self._offset_of_max_timestamp)
        self.next_offset = info.last_offset + 1

    # -- scanning ------------------------------------------------------------

    def _pread(self, size: int, position: int) -> bytes:
        return os.pread(self._fd, size, position)

    def _scan(self, start: int, end: int, *, validate: bool) -> Iterator[tuple[int, BatchHeader]]:
        """Yield (position, header) of consecutive batches in [start, end).

        Checks framing (magic, length within ``end``); with ``validate`` also
        the CRC. Raises SegmentCorruptError at the first bad batch.
        """
        chunk = VALIDATE_CHUNK if validate else SCAN_CHUNK
        buf, buf_start, pos = b"", start, start
        while pos < end:
            off = pos - buf_start
            if off + HEADER_SIZE > len(buf):
                buf, buf_start, off = self._pread(min(chunk, end - pos), pos), pos, 0
                if len(buf) < HEADER_SIZE:
                    raise SegmentCorruptError(self.path, pos, f"{end - pos} bytes: torn header")
            header = parse_header(buf, off)
            size = header.size
            if header.magic != MAGIC_V2 or size < HEADER_SIZE or size > end - pos:
                raise SegmentCorruptError(
                    self.path, pos, f"magic {header.magic}, size {size}, {end - pos} bytes left"
                )
            if validate:
                if off + size > len(buf) and size <= chunk:
                    buf, buf_start, off = self._pread(min(chunk, end - pos), pos), pos, 0
                crc = self._crc(buf, off, pos, size)
                if crc != header.crc:
                    raise SegmentCorruptError(self.path, pos, f"CRC mismatch in batch of {size}")
            yield pos, header
            pos += size

    def _crc(self, buf: bytes, off: int, pos: int, size: int) -> int:
        """CRC-32C of the batch's checked bytes, from ``buf`` or streamed from the file."""
        if off + size <= len(buf):
            return crc32c(memoryview(buf)[off + CRC_START : off + size])
        crc, at, stop = 0, pos + CRC_START, pos + size
        while at < stop:
            data = self._pread(min(VALIDATE_CHUNK, stop - at), at)
            crc = _crc32c.crc32c(data, crc)
            at += len(data)
        return crc

    def translate_offset(
        self, offset: int, end: int | None = None
    ) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch ending at or after ``offset``, or None."""
        self._ensure_indexes()
        end = self.size if end is None else min(end, self.size)
        _, position = self.offset_index.lookup(offset)
        for pos, header in self._scan(position, end, validate=False):
            if header.last_offset >= offset:
                return pos, header
        return None

    # -- reading -------------------------------------------------------------

    def read(
        self,
        start_offset: int,
        max_bytes: int,
        *,
        max_position: int | None = None,
        max_offset: int | None = None,
        min_one: bool = True,
    ) -> SegmentRead | None:
        """Whole batches from the one holding ``start_offset``, at most ``max_bytes``.

        None if no batch in this segment (below ``max_position``) ends at or
        after ``start_offset``. Batches ending at or after ``max_offset`` (the
        high watermark, say) are left out. With ``min_one`` a first batch larger
        than ``max_bytes`` is returned whole so a consumer always progresses
        (Kafka's minOneMessage).
        """
        end = self.size if max_position is None else min(max_position, self.size)
        found = self._locate(start_offset, end)
        if found is None:
            return None
        position, header = found
        if max_offset is not None and header.last_offset >= max_offset:
            return SegmentRead(position, 0, b"", header.base_offset)
        limit = min(max(max_bytes, 0), end - position)
        if header.size > limit:
            if not min_one:
                return SegmentRead(position, 0, b"", header.base_offset)
            data = self._pread(header.size, position)
            self._remember(header.last_offset + 1, position + header.size)
            return SegmentRead(position, header.size, data, header.base_offset)
        data = self._pread(limit, position)
        size, last_start = _whole_batches(data, max_offset)
        self._remember(_last_offset_at(data, last_start) + 1, position + size)
        records = data if size == len(data) else memoryview(data)[:size]
        return SegmentRead(position, size, records, header.base_offset)

    def _locate(self, offset: int, end: int) -> tuple[int, BatchHeader] | None:
        """translate_offset, short-cut for a sequential reader continuing where it left off.

        The position a previous read ended at is remembered for the offset
        that follows it; one header read confirms it (a consumer or follower
        reading on then needs no index lookup and no scan).
        """
        position = self._read_hints.get(offset)
        if position is not None and position + HEADER_SIZE <= end:
            header = parse_header(self._pread(HEADER_SIZE, position))
            if (
                header.magic == MAGIC_V2
                and header.base_offset <= offset <= header.last_offset
                and header.size <= end - position
            ):
                return position, header
        return self.translate_offset(offset, end)

    def _remember(self, offset: int, position: int) -> None:
        hints = self._read_hints
        if len(hints) >= READ_HINTS_MAX:
            del hints[next(iter(hints))]
        hints[offset] = position

    def find_offset_by_timestamp(self, timestamp: int, start_offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after ``start_offset`` with
        timestamp >= ``timestamp``, or None if the segment has none.

        The time index narrows the search to a few batches, headers find the
        batch, and only that one batch is decoded to find the exact record.
        """
        from protocol.records import decode_batch  # the one storage path that decodes

        if self.max_timestamp < timestamp:
            return None
        _, indexed_offset = self.time_index.lookup(timestamp)
        _, position = self.offset_index.lookup(max(indexed_offset, start_offset))
        for pos, header in self._scan(position, self.size, validate=False):
            if header.max_timestamp < timestamp or header.last_offset < start_offset:
                continue
            _, records = decode_batch(self._pread(header.size, pos))
            for record in records:
                if record.timestamp >= timestamp and record.offset >= start_offset:
                    return record.offset, record.timestamp
        return None

    # -- recovery and truncation --------------------------------------------

    def recover(self, on_batch: Callable[[BatchHeader], None] | None = None) -> int:
        """Re-validate every batch, rebuild the indexes, cut a torn or corrupt tail.

        Checks framing, magic, CRC and that offsets continue densely from the
        base offset. Returns the bytes truncated; ``recovery_error`` then says
        why. ``on_batch`` sees each valid batch (the log rebuilds epochs).
        """
        self._reset_indexes()
        self._read_hints.clear()
        self.next_offset = self.base_offset
        self.recovery_error = None
        valid = 0
        try:
            for position, header in self._scan(0, self.size, validate=True):
                if header.base_offset != self.next_offset or header.last_offset_delta < 0:
                    raise SegmentCorruptError(
                        self.path,
                        position,
                        f"batch offsets {header.base_offset}..{header.last_offset}, "
                        f"expected to start at {self.next_offset}",
                    )
                self._index_batch(_info(header), position)
                if on_batch is not None:
                    on_batch(header)
                valid = position + header.size
        except SegmentCorruptError as exc:
            self.recovery_error = exc.reason
        truncated = self.size - valid
        if truncated:
            os.ftruncate(self._fd, valid)
            self.size = valid
            self._dirty = True
        return truncated

    def load_tail(self) -> bool:
        """Load indexes and scan headers after the last index entry to find the end.

        For a segment that was cleanly closed: True if the indexes are sane
        and whole batches run exactly to the end of the file, which sets
        ``next_offset`` and the max timestamp without reading bodies. False
        means the caller must ``recover()``.
        """
        if not self._load_indexes():
            return False
        self._max_timestamp, self._offset_of_max_timestamp = self.time_index.last_entry
        return self._scan_tail()

    def _scan_tail(self) -> bool:
        indexed_offset, position = self.offset_index.last_entry
        self._last_index_position = position
        expected = None if len(self.offset_index) else self.base_offset
        self.next_offset = self.base_offset
        try:
            for pos, header in self._scan(position, self.size, validate=False):
                if expected is None and header.last_offset != indexed_offset:
                    return False
                if expected is not None and header.base_offset != expected:
                    return False
                if pos - position > self._interval_bytes and not self.offset_index.is_full:
                    return False  # the index lacks an entry the rule would have made
                if header.max_timestamp > self._max_timestamp:
                    self._max_timestamp = header.max_timestamp
                    self._offset_of_max_timestamp = header.last_offset
                expected = self.next_offset = header.last_offset + 1
        except SegmentCorruptError:
            return False
        indexes_ahead = len(self.offset_index) and indexed_offset >= self.next_offset
        times_ahead = len(self.time_index) and self.time_index.last_entry[1] >= self.next_offset
        return not (indexes_ahead or times_ahead)

    def truncate_to(self, offset: int) -> int:
        """Remove every batch ending at or after ``offset``; returns bytes removed.

        A batch holding ``offset`` goes whole, so ``next_offset`` may end up
        below ``offset``: a segment never holds part of a batch.
        """
        found = self.translate_offset(offset)
        if found is None:
            return 0
        position, _ = found
        self._read_hints.clear()
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        os.ftruncate(self._fd, position)
        self._dirty = True
        removed, self.size = self.size - position, position
        self._max_timestamp, self._offset_of_max_timestamp = self.time_index.last_entry
        ok = self._scan_tail()
        assert ok, f"{self.path}: inconsistent after truncation to {offset}"
        return removed

    # -- lifecycle -----------------------------------------------------------

    def finalize(self) -> None:
        """On roll or close: record the final max timestamp, release index descriptors."""
        self._ensure_indexes()
        self.time_index.maybe_append(
            self._max_timestamp, self._offset_of_max_timestamp, skip_full_check=True
        )
        self.offset_index.close()
        self.time_index.close()

    def flush(self) -> None:
        """fsync the log file (if written since the last flush) and both indexes."""
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self.offset_index.flush()
        self.time_index.flush()

    def close(self) -> None:
        """Close every descriptor; the segment cannot be used afterwards."""
        self.offset_index.close()
        self.time_index.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        """Close and unlink the three files (the caller fsyncs the directory)."""
        self.close()
        for path in (self.path, self.offset_index.path, self.time_index.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def __repr__(self) -> str:
        return f"LogSegment({self.path!r}, size={self.size}, next_offset={self.next_offset})"


def _info(header: BatchHeader) -> BatchInfo:
    return BatchInfo(header.base_offset, header.last_offset, header.max_timestamp, header.size)
