"""RecordBatch v2 framing: the 61-byte header, its checksum, and validation.

This is all the broker needs to know about a batch on the hot path. The
records inside stay opaque bytes; see protocol/records.py for the full codec.

Layout (Kafka's DefaultRecordBatch, magic 2)::

    baseOffset            int64    0
    batchLength           int32    8   bytes after this field
    partitionLeaderEpoch  int32   12
    magic                 int8    16
    crc                   uint32  17   CRC-32C of attributes..end
    attributes            int16   21
    lastOffsetDelta       int32   23
    baseTimestamp         int64   27
    maxTimestamp          int64   35
    producerId            int64   43
    producerEpoch         int16   51
    baseSequence          int32   53
    recordsCount          int32   57
    records ...                   61

baseOffset and partitionLeaderEpoch lie outside the CRC, so a leader assigns
them by rewriting those 12 bytes in place.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import construct as c
import crc32c as _crc32c

BATCH_HEADER = c.Struct(
    "base_offset" / c.Int64sb,
    "batch_length" / c.Int32sb,
    "partition_leader_epoch" / c.Int32sb,
    "magic" / c.Int8sb,
    "crc" / c.Int32ub,
    "attributes" / c.Int16sb,
    "last_offset_delta" / c.Int32sb,
    "base_timestamp" / c.Int64sb,
    "max_timestamp" / c.Int64sb,
    "producer_id" / c.Int64sb,
    "producer_epoch" / c.Int16sb,
    "base_sequence" / c.Int32sb,
    "records_count" / c.Int32sb,
)
"""The header as declared with construct; _HEADER below is the same layout
for the hot path (tests/test_batch.py checks they agree)."""

_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = _HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: bytes not counted by batchLength
CRC_START = 21  # attributes: first byte covered by the CRC
MAGIC_V2 = 2

_OFFSET_AND_EPOCH = struct.Struct(">q")
_EPOCH = struct.Struct(">i")
_LENGTH = struct.Struct(">i")

# attributes bits
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08  # 0 = CreateTime, 1 = LogAppendTime
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20

NO_PRODUCER_ID = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1


class CorruptBatchError(ValueError):
    """A batch whose framing or checksum is wrong (Kafka's CORRUPT_MESSAGE)."""


class InvalidBatchError(ValueError):
    """A well-formed batch that breaks a rule (Kafka's INVALID_RECORD)."""


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch takes on the wire and on disk."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_MASK)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Read the header at buf[pos:]; the caller checks that 61 bytes are there."""
    return BatchHeader(*_HEADER.unpack_from(buf, pos))


def batch_size_at(buf: bytes | bytearray | memoryview, pos: int) -> int:
    """Whole-batch size from the length field at buf[pos+8:pos+12]."""
    return _LENGTH.unpack_from(buf, pos + 8)[0] + LOG_OVERHEAD


def crc32c(data: bytes | bytearray | memoryview) -> int:
    return _crc32c.crc32c(data)


def compute_crc(batch: bytes | bytearray | memoryview) -> int:
    """CRC-32C over attributes..end of one whole batch."""
    return _crc32c.crc32c(memoryview(batch)[CRC_START:])


def validate_batch(
    buf: bytes | bytearray | memoryview, pos: int = 0, *, max_batch_bytes: int | None = None
) -> BatchHeader:
    """Check one batch at buf[pos:] is whole, magic 2, sane and CRC-correct.

    Raises CorruptBatchError for framing or checksum faults and
    InvalidBatchError for rule violations; never reads past the batch.
    """
    available = len(buf) - pos
    if available < HEADER_SIZE:
        raise CorruptBatchError(f"batch header truncated: {available} of {HEADER_SIZE} bytes")
    header = parse_header(buf, pos)
    if header.magic != MAGIC_V2:
        raise CorruptBatchError(f"unsupported magic {header.magic} (only v2 record batches)")
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise CorruptBatchError(f"batch length {header.batch_length} below the header size")
    if header.size > available:
        raise CorruptBatchError(f"batch truncated: {available} of {header.size} bytes")
    if max_batch_bytes is not None and header.size > max_batch_bytes:
        raise InvalidBatchError(f"batch of {header.size} bytes exceeds {max_batch_bytes}")
    view = memoryview(buf)[pos + CRC_START : pos + header.size]
    actual = _crc32c.crc32c(view)
    if actual != header.crc:
        raise CorruptBatchError(f"CRC mismatch: stored {header.crc:#010x}, computed {actual:#010x}")
    if header.records_count < 0 or header.last_offset_delta < 0:
        raise InvalidBatchError("negative record count or last offset delta")
    if header.records_count == 0 and not header.is_control:
        raise InvalidBatchError("empty batch")
    if header.records_count and header.last_offset_delta != header.records_count - 1:
        raise InvalidBatchError(
            f"last offset delta {header.last_offset_delta} does not match "
            f"{header.records_count} records"
        )
    return header


def iter_batches(buf: bytes | bytearray | memoryview, *, max_batch_bytes: int | None = None):
    """Validate and yield (position, header) for consecutive batches filling buf."""
    pos = 0
    end = len(buf)
    while pos < end:
        header = validate_batch(buf, pos, max_batch_bytes=max_batch_bytes)
        yield pos, header
        pos += header.size


def set_base_offset_and_epoch(
    buf: bytearray | memoryview, pos: int, base_offset: int, leader_epoch: int
) -> None:
    """Rewrite the two fields the CRC does not cover, in place."""
    _OFFSET_AND_EPOCH.pack_into(buf, pos, base_offset)
    _EPOCH.pack_into(buf, pos + 12, leader_epoch)
