"""A partition's log: ordered segments in ``<topic>-<partition>/`` (Kafka's UnifiedLog/LocalLog).

What a Kafka engineer expects: append as leader (offsets and leader epoch
assigned by rewriting 16 header bytes the CRC does not cover) or as follower
(offsets kept, must continue from the log end offset), bounded reads of whole
batches, ListOffsets by timestamp, roll, retention, truncation (KIP-101) and
recovery at open.

Choices that differ from Kafka, and why:

- Checkpoints keep Kafka's per-data-directory files
  (``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint`` in the
  parent directory, one line per partition). Each Log rewrites its own line
  (read, modify, atomic replace) when it closes, after the flush that follows
  a roll, and after truncation; Kafka's LogManager instead writes every
  partition's line once a minute. A stale recovery point only means more
  recovery work, never lost data, because it errs low.
- Segments whose recovery point lies at their exact end are not re-read: the
  active segment of a cleanly closed log is checked by scanning headers after
  its last index entry (Kafka uses a separate clean-shutdown marker file).
- segment.ms counts from the first append into the segment (``now_ms`` at
  that append; for a segment found on disk, the time the log was opened), not
  from the first batch's timestamp, so producer clocks cannot force rolls.
- Deleted segments are unlinked at once instead of renamed ``.deleted`` and
  removed file.delete.delay.ms later: reads copy bytes within the same call,
  so no reader can hold a range into a deleted file.
- The leader writes the patched header and the untouched rest of each batch
  with one ``pwritev``; the caller's buffer is never modified.
"""

from __future__ import annotations

import bisect
import logging
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from broker.log.checkpoints import (
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    CorruptCheckpointError,
    OffsetCheckpointFile,
    fsync_dir,
)
from broker.log.epoch_cache import LeaderEpochCache
from broker.log.log_config import INT32_MAX, LogConfig
from broker.log.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    OFFSET_DIGITS,
    TIME_INDEX_SUFFIX,
    BatchInfo,
    LogSegment,
)
from protocol.batch import BatchHeader, iter_batches

log = logging.getLogger(__name__)

EARLIEST_TIMESTAMP = -2
"""ListOffsets target for the log start offset."""
LATEST_TIMESTAMP = -1
"""ListOffsets target for the log end offset."""
MAX_TIMESTAMP = -3
"""ListOffsets target for the record with the largest timestamp (KIP-734)."""

_STRAY_SUFFIXES = (".deleted", ".cleaned", ".swap", ".tmp")
_PREFIX = struct.Struct(">qii")  # baseOffset, batchLength, partitionLeaderEpoch

Buffer = bytes | bytearray | memoryview


class LogError(Exception):
    """Base of the storage errors a caller turns into Kafka error codes."""


class OffsetOutOfRange(LogError):
    """A read outside [log_start_offset, log_end_offset] (OFFSET_OUT_OF_RANGE)."""


class UnexpectedAppendOffset(LogError):
    """A follower append that does not continue from the log end offset."""


class RecordBatchTooLarge(LogError):
    """An append larger than segment.bytes: no segment could hold it."""


@dataclass(frozen=True, slots=True)
class AppendInfo:
    """What one append wrote (Kafka's LogAppendInfo essentials)."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    num_batches: int
    num_records: int
    valid_bytes: int
    log_start_offset: int
    log_append_time_ms: int = -1


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Whole batches read from the log, and where they lie on disk.

    ``data`` holds exactly ``size`` bytes copied from ``path`` at
    ``position``; a zero-copy path could send that file range instead.
    ``first_offset`` is the base offset of the first batch, -1 when empty.
    """

    data: bytes | memoryview
    fetch_offset: int
    first_offset: int
    path: str | None
    position: int
    size: int
    log_start_offset: int
    log_end_offset: int


def parse_topic_partition(name: str) -> tuple[str, int]:
    """(topic, partition) from a ``<topic>-<partition>`` directory name."""
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        raise ValueError(f"log directory name {name!r} is not <topic>-<partition>")
    return topic, int(partition)


class Log:
    """One partition's segmented log. Not thread-safe; every call is synchronous."""

    def __init__(self, directory: str | os.PathLike[str], config: LogConfig, now_ms: int) -> None:
        """Open or create the log in ``directory``, recovering whatever a crash left.

        Segments wholly below the recovery point are trusted; from the segment
        holding it on, every batch is re-validated, a torn or corrupt tail is
        cut (one warning names file and offset), indexes are rebuilt, and later
        segments that no longer follow densely are deleted.
        """
        self.dir = os.path.abspath(os.fspath(directory))
        self.topic, self.partition = parse_topic_partition(os.path.basename(self.dir))
        self.config = config
        os.makedirs(self.dir, exist_ok=True)
        bases = _clean_directory(self.dir)
        self.epoch_cache = LeaderEpochCache(self.dir)
        self._last_flush_ms = now_ms
        self._roll_flush_pending = False
        self._closed = False
        data_dir = os.path.dirname(self.dir)
        tp = (self.topic, self.partition)
        recovery_point = _read_offset(os.path.join(data_dir, RECOVERY_POINT_CHECKPOINT), tp) or 0
        start_offset = _read_offset(os.path.join(data_dir, LOG_START_OFFSET_CHECKPOINT), tp) or 0
        if bases:
            self._segments = [LogSegment(self.dir, base, config, now_ms) for base in bases]
            self._recover(recovery_point)
        else:
            self._segments = [LogSegment.create(self.dir, start_offset, config, now_ms)]
            fsync_dir(self.dir)
        self._bases = [s.base_offset for s in self._segments]
        active = self.active_segment
        assert active.next_offset is not None, active
        self._leo = active.next_offset
        self.log_start_offset = min(max(start_offset, self._bases[0]), self._leo)
        self.recovery_point = min(recovery_point, self._leo)
        self.epoch_cache.truncate_from_end(self._leo, flush=False)
        self.epoch_cache.truncate_from_start(self.log_start_offset)
        self.epoch_cache.flush()

    def _recover(self, recovery_point: int) -> None:
        """Re-validate segments from the one holding ``recovery_point`` to the end."""
        segments = self._segments
        first = max(bisect.bisect_right([s.base_offset for s in segments], recovery_point) - 1, 0)
        for i in range(first, len(segments)):
            segment = segments[i]
            last = i == len(segments) - 1
            clean = last and i == first and segment.load_tail()
            if clean and segment.next_offset == recovery_point:
                return
            if i == first:
                self.epoch_cache.truncate_from_end(segment.base_offset, flush=False)
            truncated = segment.recover(self._note_recovered_epoch)
            following = None if last else segments[i + 1]
            if truncated or (following and following.base_offset != segment.next_offset):
                self._drop_after_recovery(i, truncated)
                return

    def _drop_after_recovery(self, i: int, truncated: int) -> None:
        segment, dropped = self._segments[i], self._segments[i + 1 :]
        log.warning(
            "%s: recovery truncated %d bytes at position %d, log continues at offset %d (%s);"
            " deleting %d later segments",
            segment.path,
            truncated,
            segment.size,
            segment.next_offset,
            segment.recovery_error or "gap before the next segment",
            len(dropped),
        )
        for later in dropped:
            later.delete()
        del self._segments[i + 1 :]
        if dropped:
            fsync_dir(self.dir)

    def _note_epoch(self, header: BatchHeader, *, flush: bool = True) -> None:
        epoch = header.partition_leader_epoch
        if epoch >= 0 and epoch > self.epoch_cache.latest_epoch:
            self.epoch_cache.assign(epoch, header.base_offset, flush=flush)

    def _note_recovered_epoch(self, header: BatchHeader) -> None:
        self._note_epoch(header, flush=False)

    # -- properties ----------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record will get."""
        return self._leo

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    @property
    def segments(self) -> tuple[LogSegment, ...]:
        return tuple(self._segments)

    @property
    def size(self) -> int:
        """Bytes in all segments."""
        return sum(s.size for s in self._segments)

    @property
    def latest_epoch(self) -> int:
        return self.epoch_cache.latest_epoch

    # -- append --------------------------------------------------------------

    def append_as_leader(self, records: Buffer, leader_epoch: int, now_ms: int) -> AppendInfo:
        """Validate the batches in ``records``, give them the next offsets and ``leader_epoch``.

        Every batch is checked (framing, magic, CRC, max.message.bytes) before
        anything is written, so a bad batch rejects the whole buffer
        (CorruptBatchError / InvalidBatchError from protocol.batch).
        """
        assert leader_epoch >= 0, leader_epoch
        view = memoryview(records)
        chunks: list[Buffer] = []
        infos: list[BatchInfo] = []
        num_records = 0
        offset = self._leo
        for pos, header in iter_batches(view, max_batch_bytes=self.config.max_message_bytes):
            chunks.append(_PREFIX.pack(offset, header.batch_length, leader_epoch))
            chunks.append(view[pos + _PREFIX.size : pos + header.size])
            last = offset + header.last_offset_delta
            infos.append(BatchInfo(offset, last, header.max_timestamp, header.size))
            num_records += header.records_count
            offset = last + 1
        info = self._append(chunks, infos, len(view), num_records, now_ms)
        if infos and leader_epoch > self.epoch_cache.latest_epoch:
            self.epoch_cache.assign(leader_epoch, info.first_offset)
        return info

    def append_as_follower(self, records: Buffer, now_ms: int) -> AppendInfo:
        """Append the leader's batches byte for byte; their offsets must continue ours.

        Raises UnexpectedAppendOffset if the first batch does not start at
        the log end offset or the batches are not consecutive.
        """
        view = memoryview(records)
        infos: list[BatchInfo] = []
        headers: list[BatchHeader] = []
        expected = self._leo
        for _, header in iter_batches(view):
            if header.base_offset != expected:
                raise UnexpectedAppendOffset(
                    f"{self.dir}: batch at offset {header.base_offset}, expected {expected}"
                    f" (log end offset {self._leo})"
                )
            infos.append(_info(header))
            headers.append(header)
            expected = header.last_offset + 1
        num_records = sum(h.records_count for h in headers)
        info = self._append([view], infos, len(view), num_records, now_ms)
        for header in headers:
            self._note_epoch(header)
        return info

    def _append(
        self,
        chunks: Sequence[Buffer],
        infos: Sequence[BatchInfo],
        size: int,
        num_records: int,
        now_ms: int,
    ) -> AppendInfo:
        self._check_open()
        if not infos:
            return AppendInfo(self._leo, self._leo - 1, -1, -1, 0, 0, 0, self.log_start_offset)
        if size > self.config.segment_bytes:
            raise RecordBatchTooLarge(
                f"{self.dir}: {size} bytes exceed segment.bytes={self.config.segment_bytes}"
            )
        segment = self._maybe_roll(size, infos[-1].last_offset, now_ms)
        segment.append(chunks, infos, now_ms)
        self._leo = infos[-1].last_offset + 1
        best = max(infos, key=lambda b: b.max_timestamp)
        flush_messages = self.config.flush_messages
        if flush_messages is not None and self._leo - self.recovery_point >= flush_messages:
            self.flush()
        return AppendInfo(
            first_offset=infos[0].base_offset,
            last_offset=infos[-1].last_offset,
            max_timestamp=best.max_timestamp,
            offset_of_max_timestamp=best.last_offset,
            num_batches=len(infos),
            num_records=num_records,
            valid_bytes=size,
            log_start_offset=self.log_start_offset,
        )

    # -- roll ----------------------------------------------------------------

    def _maybe_roll(self, size: int, last_offset: int, now_ms: int) -> LogSegment:
        """The segment to append ``size`` bytes to, rolling first if Kafka would."""
        segment = self.active_segment
        if segment.size == 0:
            return segment
        if (
            segment.size > self.config.segment_bytes - size
            or now_ms - segment.roll_base_ms > self.config.segment_ms
            or segment.indexes_full
            or last_offset - segment.base_offset > INT32_MAX
        ):
            return self.roll(now_ms)
        return segment

    def maybe_roll(self, now_ms: int) -> bool:
        """Roll a non-empty active segment older than segment.ms (the driver's periodic tick).

        Appends check the same condition; this covers partitions that stop
        receiving appends, so their last segment can still age out.
        """
        self._check_open()
        segment = self.active_segment
        if segment.size and now_ms - segment.roll_base_ms > self.config.segment_ms:
            self.roll(now_ms)
            return True
        return False

    def roll(self, now_ms: int) -> LogSegment:
        """Start a new active segment at the log end offset (no-op if the active one is empty).

        The old segment is fsynced later, by maybe_flush, as Kafka flushes a
        rolled segment in the background rather than in the append path.
        """
        self._check_open()
        old = self.active_segment
        if old.size == 0:
            return old
        old.finalize()
        new = LogSegment.create(self.dir, self._leo, self.config, now_ms)
        fsync_dir(self.dir)
        self._segments.append(new)
        self._bases.append(new.base_offset)
        self._roll_flush_pending = True
        log.info("%s: rolled new segment at offset %d", new.path, new.base_offset)
        return new

    # -- read ----------------------------------------------------------------

    def read(
        self,
        start_offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one: bool = True,
    ) -> ReadResult:
        """Whole batches from the one holding ``start_offset``, at most ``max_bytes``.

        Batches ending at or after ``max_offset`` (e.g. the high watermark) are
        excluded, including one that straddles it. ``min_one`` returns a first
        batch larger than ``max_bytes`` whole. Raises OffsetOutOfRange
        outside [log_start_offset, log_end_offset]; at the end, reads nothing.
        Reads never span segments, as in Kafka.
        """
        self._check_open()
        if not self.log_start_offset <= start_offset <= self._leo:
            raise OffsetOutOfRange(
                f"{self.dir}: offset {start_offset} outside [{self.log_start_offset}, {self._leo}]"
            )
        if start_offset == self._leo or (max_offset is not None and start_offset >= max_offset):
            return self._empty_read(start_offset)
        i = bisect.bisect_right(self._bases, start_offset) - 1
        for segment in self._segments[i:]:
            found = segment.read(start_offset, max_bytes, max_offset=max_offset, min_one=min_one)
            if found is not None:
                return ReadResult(
                    data=found.records,
                    fetch_offset=start_offset,
                    first_offset=found.first_offset if found.size else -1,
                    path=segment.path,
                    position=found.position,
                    size=found.size,
                    log_start_offset=self.log_start_offset,
                    log_end_offset=self._leo,
                )
        return self._empty_read(start_offset)

    def _empty_read(self, start_offset: int) -> ReadResult:
        return ReadResult(b"", start_offset, -1, None, 0, 0, self.log_start_offset, self._leo)

    def fetch_offset_by_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) for ListOffsets: the first record with timestamp >= ``timestamp``.

        EARLIEST_TIMESTAMP and LATEST_TIMESTAMP give the log start and end
        offsets (timestamp -1); MAX_TIMESTAMP the record with the largest
        timestamp. None when no record qualifies (Kafka answers offset -1).
        """
        self._check_open()
        if timestamp == EARLIEST_TIMESTAMP:
            return self.log_start_offset, -1
        if timestamp == LATEST_TIMESTAMP:
            return self._leo, -1
        if timestamp == MAX_TIMESTAMP:
            if self._leo == self.log_start_offset:
                return None
            timestamp = max(s.max_timestamp for s in self._segments)
        if timestamp < 0:
            return None
        for segment in self._live_segments():
            if segment.max_timestamp >= timestamp:
                found = segment.find_offset_by_timestamp(timestamp, self.log_start_offset)
                if found is not None:
                    return found
        return None

    def earliest_offset(self) -> int:
        return self.log_start_offset

    def latest_offset(self) -> int:
        return self._leo

    def _live_segments(self) -> list[LogSegment]:
        """Segments holding offsets at or above the log start offset."""
        i = max(bisect.bisect_right(self._bases, self.log_start_offset) - 1, 0)
        return self._segments[i:]

    # -- retention -----------------------------------------------------------

    def delete_retention(self, now_ms: int, high_watermark: int | None = None) -> int:
        """Delete whole old segments by retention.ms, retention.bytes and log start offset.

        Only segments wholly below ``high_watermark`` (default: the log end)
        go. If every segment qualifies, the active one is rolled first so the
        log keeps an (empty) active segment. Returns segments deleted.
        """
        self._check_open()
        upper = self._leo if high_watermark is None else min(high_watermark, self._leo)
        deleted = 0
        retention_ms = self.config.retention_ms
        if retention_ms >= 0:
            expired = self._deletable(
                lambda s, _: now_ms - s.largest_timestamp > retention_ms, upper
            )
            deleted += self._delete_segments(expired, now_ms, "retention.ms")
        retention_bytes = self.config.retention_bytes
        if retention_bytes >= 0 and self.size > retention_bytes:
            excess = [self.size - retention_bytes]

            def over_size(segment: LogSegment, _: LogSegment | None) -> bool:
                if excess[0] < segment.size:
                    return False
                excess[0] -= segment.size
                return True

            deleted += self._delete_segments(
                self._deletable(over_size, upper), now_ms, "retention.bytes"
            )
        below_start = self._deletable(
            lambda _, n: n is not None and n.base_offset <= self.log_start_offset, upper
        )
        return deleted + self._delete_segments(below_start, now_ms, "log start offset")

    def _deletable(
        self, predicate: Callable[[LogSegment, LogSegment | None], bool], upper: int
    ) -> list[LogSegment]:
        """The oldest segments, in order, for which ``predicate`` holds."""
        out = []
        for i, segment in enumerate(self._segments):
            following = self._segments[i + 1] if i + 1 < len(self._segments) else None
            end = following.base_offset if following else self._leo
            if end > upper or (following is None and segment.size == 0):
                break
            if not predicate(segment, following):
                break
            out.append(segment)
        return out

    def _delete_segments(self, doomed: list[LogSegment], now_ms: int, reason: str) -> int:
        if not doomed:
            return 0
        if len(doomed) == len(self._segments):
            self.roll(now_ms)
        del self._segments[: len(doomed)], self._bases[: len(doomed)]
        self.log_start_offset = max(self.log_start_offset, self._bases[0])
        self.epoch_cache.truncate_from_start(self.log_start_offset)
        for segment in doomed:
            log.info("%s: deleting segment (%s), %d bytes", segment.path, reason, segment.size)
            segment.delete()
        fsync_dir(self.dir)
        return len(doomed)

    def increment_log_start_offset(self, offset: int) -> bool:
        """Move the log start offset up (DeleteRecords); whole segments go at retention."""
        self._check_open()
        assert offset <= self._leo, (offset, self._leo)
        if offset <= self.log_start_offset:
            return False
        self.log_start_offset = offset
        self.epoch_cache.truncate_from_start(offset)
        self._write_checkpoints()
        return True

    # -- truncation ----------------------------------------------------------

    def truncate_to(self, offset: int, now_ms: int) -> bool:
        """Remove every batch ending at or after ``offset`` (a follower diverged, KIP-101).

        A batch holding ``offset`` goes whole, so the log end may land below
        ``offset``. Returns False if there was nothing to remove.
        """
        self._check_open()
        if offset < 0:
            raise ValueError(f"cannot truncate to negative offset {offset}")
        if offset >= self._leo:
            return False
        if offset < self._bases[0]:
            self.truncate_fully_and_start_at(offset, now_ms)
            return True
        old_leo = self._leo
        i = bisect.bisect_right(self._bases, offset) - 1
        dropped = self._segments[i + 1 :]
        for segment in dropped:
            segment.delete()
        del self._segments[i + 1 :], self._bases[i + 1 :]
        segment = self._segments[i]
        segment.truncate_to(offset)
        assert segment.next_offset is not None
        self._leo = segment.next_offset
        self._after_truncation(bool(dropped))
        log.info("%s: truncated to offset %d (log end was %d)", self.dir, self._leo, old_leo)
        return True

    def truncate_fully_and_start_at(self, offset: int, now_ms: int) -> None:
        """Delete everything and restart the log, empty, at ``offset``."""
        self._check_open()
        assert offset >= 0, offset
        for segment in self._segments:
            segment.delete()
        self._segments = [LogSegment.create(self.dir, offset, self.config, now_ms)]
        self._bases = [offset]
        self._leo = self.log_start_offset = offset
        self.epoch_cache.clear()
        self._after_truncation(True)
        log.info("%s: emptied, restarting at offset %d", self.dir, offset)

    def _after_truncation(self, files_changed: bool) -> None:
        self.log_start_offset = min(self.log_start_offset, self._leo)
        self.recovery_point = min(self.recovery_point, self._leo)
        self.epoch_cache.truncate_from_end(self._leo)
        self._roll_flush_pending = False
        if files_changed:
            fsync_dir(self.dir)
        self._write_checkpoints()

    # -- durability ----------------------------------------------------------

    def flush(self, up_to_offset: int | None = None) -> None:
        """fsync every segment holding offsets in [recovery_point, up_to_offset).

        Afterwards the recovery point is ``up_to_offset`` (default: the log
        end): everything below it survives a machine crash.
        """
        self._check_open()
        target = self._leo if up_to_offset is None else min(up_to_offset, self._leo)
        if target <= self.recovery_point:
            return
        for i, segment in enumerate(self._segments):
            end = self._bases[i + 1] if i + 1 < len(self._bases) else self._leo
            if segment.base_offset < target and end > self.recovery_point:
                segment.flush()
        self.recovery_point = target

    def maybe_flush(self, now_ms: int) -> None:
        """Flush what policy asks for; the driver calls this periodically.

        Segments rolled since the last call are fsynced and the recovery point
        checkpointed (Kafka's background flush after roll); with flush.ms set,
        the whole log is fsynced once the last flush is that old.
        """
        self._check_open()
        if self._roll_flush_pending:
            self._roll_flush_pending = False
            self.flush(self.active_segment.base_offset)
            self._write_checkpoints()
        flush_ms = self.config.flush_ms
        if flush_ms is not None and now_ms - self._last_flush_ms >= flush_ms:
            self._last_flush_ms = now_ms
            self.flush()

    def close(self) -> None:
        """Flush everything, close every file and checkpoint the recovery point."""
        if self._closed:
            return
        self.active_segment.finalize()
        self.flush()
        self.active_segment.flush()
        for segment in self._segments:
            segment.close()
        self._write_checkpoints()
        self._closed = True

    def _check_open(self) -> None:
        assert not self._closed, f"{self.dir}: log is closed"

    def _write_checkpoints(self) -> None:
        """Rewrite this partition's lines in the data directory's checkpoint files."""
        data_dir = os.path.dirname(self.dir)
        tp = (self.topic, self.partition)
        _update_offset(os.path.join(data_dir, RECOVERY_POINT_CHECKPOINT), tp, self.recovery_point)
        start = self.log_start_offset if self.log_start_offset > self._bases[0] else None
        _update_offset(os.path.join(data_dir, LOG_START_OFFSET_CHECKPOINT), tp, start)


def _info(header: BatchHeader) -> BatchInfo:
    return BatchInfo(header.base_offset, header.last_offset, header.max_timestamp, header.size)


def _read_offsets(path: str) -> dict[tuple[str, int], int]:
    try:
        return OffsetCheckpointFile(path).read()
    except CorruptCheckpointError as exc:
        log.warning("%s; ignoring it (logs in this directory recover fully)", exc)
        return {}


def _read_offset(path: str, tp: tuple[str, int]) -> int | None:
    return _read_offsets(path).get(tp)


def _update_offset(path: str, tp: tuple[str, int], offset: int | None) -> None:
    """Set (or with None remove) one partition's line, rewriting only on change."""
    offsets = _read_offsets(path)
    if offsets.get(tp) == offset:
        return
    if offset is None:
        offsets.pop(tp, None)
    else:
        offsets[tp] = offset
    OffsetCheckpointFile(path).write(offsets)


def _clean_directory(directory: str) -> list[int]:
    """Delete stray temporary and orphaned index files; return segment base offsets."""
    bases: set[int] = set()
    indexes: list[tuple[int, str]] = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith(_STRAY_SUFFIXES):
            log.info("%s: deleting stray file", path)
            os.unlink(path)
            continue
        stem, suffix = os.path.splitext(name)
        if len(stem) != OFFSET_DIGITS or not stem.isdigit():
            continue
        if suffix == LOG_SUFFIX:
            bases.add(int(stem))
        elif suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            indexes.append((int(stem), path))
    for base, path in indexes:
        if base not in bases:
            log.info("%s: deleting index without a log file", path)
            os.unlink(path)
    return sorted(bases)
