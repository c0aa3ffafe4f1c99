"""The records inside a RecordBatch v2: encode, decode, build whole batches.

The broker keeps batches opaque (protocol/batch.py); this codec is for the
producer and consumer libraries, for tests, and for the rare broker paths that
must look inside a batch. Each record is (Kafka's DefaultRecord)::

    length          varint    bytes after this field
    attributes      int8      unused, 0
    timestampDelta  varlong   from the batch's baseTimestamp
    offsetDelta     varint    from the batch's baseOffset
    keyLength       varint    -1 = null key
    key             bytes
    valueLength     varint    -1 = null value
    value           bytes
    headerCount     varint
    headers         [headerKeyLength varint, headerKey utf-8,
                     headerValueLength varint (-1 = null), headerValue bytes]

RECORD declares it with construct; encode_record / decode_record are the same
layout hand-rolled for speed, and tests/test_records.py proves they agree.
Malformed input raises CorruptBatchError or InvalidBatchError (and
UnsupportedCompressionError for an unknown codec), never anything else.
Lengths other than -1 below zero are refused, and header keys must be valid
UTF-8 (Java's reader would substitute U+FFFD; no real client writes either).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import construct as c

from protocol.batch import (
    BATCH_HEADER,
    COMPRESSION_MASK,
    CRC_START,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_V2,
    NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    BatchHeader,
    CorruptBatchError,
    batch_size_at,
    compute_crc,
    validate_batch,
)
from protocol.compression import compress, decompress
from protocol.primitives import Int8, VarInt, VarLong, encode_uvarint, zigzag_encode

Header = tuple[str, bytes | None]
Buffer = bytes | bytearray | memoryview

DEFAULT_MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024
"""Cap on one batch's decompressed records: a compressed batch of at most a few
MiB that inflates past this is treated as a decompression bomb."""

TIMESTAMP_CREATE_TIME = 0
TIMESTAMP_LOG_APPEND_TIME = 1

# -- the construct declaration -----------------------------------------------

NullableVarBytes = c.FocusedSeq(
    "data",
    "length" / c.Rebuild(VarInt, lambda ctx: -1 if ctx.data is None else len(ctx.data)),
    c.Check(c.this.length >= -1),
    "data" / c.If(c.this.length >= 0, c.Bytes(c.this.length)),
)
"""BYTES with a zig-zag varint length, -1 meaning null (record keys and values)."""

VarString = c.PascalString(VarInt, "utf8")

RECORD_HEADER = c.Struct("key" / VarString, "value" / NullableVarBytes)

RECORD_BODY = c.Struct(
    "attributes" / Int8,
    "timestamp_delta" / VarLong,
    "offset_delta" / VarInt,
    "key" / NullableVarBytes,
    "value" / NullableVarBytes,
    "headers" / c.PrefixedArray(VarInt, RECORD_HEADER),
    c.Terminated,  # the length prefix must cover exactly the fields
)

RECORD = c.Prefixed(VarInt, RECORD_BODY)
"""One record as declared by Kafka; encode_record/decode_record are its fast twin."""


# -- values ------------------------------------------------------------------


class RawRecord(NamedTuple):
    """A record as it sits in a batch: offset and timestamp relative to the batch."""

    attributes: int
    timestamp_delta: int
    offset_delta: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded record with its absolute offset and timestamp (ms)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    attributes: int = 0


# -- fast encode -------------------------------------------------------------

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _varint(value: int) -> bytes:
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ValueError(f"varint {value} out of the int32 range")
    return encode_uvarint(zigzag_encode(value, 32) & 0xFFFFFFFF)


def _varlong(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"varlong {value} out of the int64 range")
    return encode_uvarint(zigzag_encode(value, 64) & 0xFFFFFFFFFFFFFFFF)


def _put_nullable(out: bytearray, data: Buffer | None) -> None:
    if data is None:
        out += b"\x01"  # zig-zag -1
    else:
        out += _varint(len(data))
        out += data


def encode_record(record: RawRecord) -> bytes:
    """One record, length prefix included, exactly as RECORD.build writes it."""
    if not -128 <= record.attributes <= 127:
        raise ValueError(f"record attributes {record.attributes} out of the int8 range")
    body = bytearray()
    body.append(record.attributes & 0xFF)
    body += _varlong(record.timestamp_delta)
    body += _varint(record.offset_delta)
    _put_nullable(body, record.key)
    _put_nullable(body, record.value)
    body += _varint(len(record.headers))
    for name, value in record.headers:
        _put_nullable(body, name.encode("utf-8"))
        _put_nullable(body, value)
    return _varint(len(body)) + body


# -- fast decode -------------------------------------------------------------


def _read_uvarint(buf: Buffer, pos: int, end: int, max_bytes: int) -> tuple[int, int]:
    result = 0
    shift = 0
    for _ in range(max_bytes):
        if pos >= end:
            raise CorruptBatchError("varint runs past the end of the record")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise CorruptBatchError(f"varint longer than {max_bytes} bytes")


def _read_varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    raw, pos = _read_uvarint(buf, pos, end, 5)
    if raw >> 32:
        raise CorruptBatchError(f"varint {raw} out of the int32 range")
    return (raw >> 1) ^ -(raw & 1), pos


def _read_varlong(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    raw, pos = _read_uvarint(buf, pos, end, 10)
    if raw >> 64:
        raise CorruptBatchError(f"varlong {raw} out of the int64 range")
    return (raw >> 1) ^ -(raw & 1), pos


def _read_nullable(buf: Buffer, pos: int, end: int) -> tuple[bytes | None, int]:
    size, pos = _read_varint(buf, pos, end)
    if size < 0:
        if size == -1:
            return None, pos
        raise CorruptBatchError(f"invalid length {size}")
    if pos + size > end:
        raise CorruptBatchError(f"field of {size} bytes runs past the end of the record")
    return bytes(buf[pos : pos + size]), pos + size


def _read_headers(buf: Buffer, pos: int, end: int) -> tuple[tuple[Header, ...], int]:
    count, pos = _read_varint(buf, pos, end)
    if count < 0:
        raise CorruptBatchError(f"invalid header count {count}")
    headers = []
    for _ in range(count):  # each header takes at least 2 bytes, so end bounds this
        name, pos = _read_nullable(buf, pos, end)
        if name is None:
            raise CorruptBatchError("null header key")
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptBatchError(f"header key is not UTF-8: {exc}") from None
        value, pos = _read_nullable(buf, pos, end)
        headers.append((text, value))
    return tuple(headers), pos


def decode_record(buf: Buffer, pos: int = 0, end: int | None = None) -> tuple[RawRecord, int]:
    """Decode the record at buf[pos:end]; return it and the position after it.

    Agrees with RECORD.parse: the same records decode to the same fields, and
    what construct refuses raises CorruptBatchError here.
    """
    end = len(buf) if end is None else min(end, len(buf))
    length, pos = _read_varint(buf, pos, end)
    if length < 1:
        raise CorruptBatchError(f"invalid record length {length}")
    if pos + length > end:
        raise CorruptBatchError(f"record of {length} bytes runs past the end of the batch")
    end = pos + length
    attributes = buf[pos]
    attributes -= (attributes & 0x80) << 1  # int8
    timestamp_delta, pos = _read_varlong(buf, pos + 1, end)
    offset_delta, pos = _read_varint(buf, pos, end)
    key, pos = _read_nullable(buf, pos, end)
    value, pos = _read_nullable(buf, pos, end)
    headers, pos = _read_headers(buf, pos, end)
    if pos != end:
        raise CorruptBatchError(f"{end - pos} unread bytes inside a record")
    return RawRecord(attributes, timestamp_delta, offset_delta, key, value, headers), end


# -- batches -----------------------------------------------------------------

RecordInput = tuple[bytes | None, bytes | None, Iterable[Header], int]
"""What build_batch takes per record: (key, value, headers, timestamp_ms)."""


def build_batch(
    records: Sequence[RecordInput],
    *,
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = NO_SEQUENCE,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    is_transactional: bool = False,
    timestamp_type: int = TIMESTAMP_CREATE_TIME,
) -> bytes:
    """A complete, CRC-correct v2 batch holding ``records`` at consecutive offsets.

    The first record's timestamp becomes baseTimestamp; with compression the
    records are compressed as one block, as every Kafka client does.
    """
    if not records:
        raise ValueError("a record batch holds at least one record")
    base_timestamp = records[0][3]
    max_timestamp = base_timestamp
    body = bytearray()
    for delta, (key, value, headers, timestamp) in enumerate(records):
        raw = RawRecord(0, timestamp - base_timestamp, delta, key, value, tuple(headers))
        body += encode_record(raw)
        max_timestamp = max(max_timestamp, timestamp)
    payload = compress(compression, body)
    attributes = compression & COMPRESSION_MASK
    if timestamp_type == TIMESTAMP_LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_MASK
    if is_transactional:
        attributes |= TRANSACTIONAL_MASK
    header = {
        "base_offset": base_offset,
        "batch_length": HEADER_SIZE - LOG_OVERHEAD + len(payload),
        "partition_leader_epoch": partition_leader_epoch,
        "magic": MAGIC_V2,
        "crc": 0,
        "attributes": attributes,
        "last_offset_delta": len(records) - 1,
        "base_timestamp": base_timestamp,
        "max_timestamp": max_timestamp,
        "producer_id": producer_id,
        "producer_epoch": producer_epoch,
        "base_sequence": base_sequence,
        "records_count": len(records),
    }
    batch = bytearray(BATCH_HEADER.build(header))
    batch += payload
    batch[CRC_START - 4 : CRC_START] = compute_crc(batch).to_bytes(4, "big")
    return bytes(batch)


def decode_batch(
    buf: Buffer, pos: int = 0, *, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES
) -> tuple[BatchHeader, list[Record]]:
    """Validate the batch at buf[pos:] and decode its records with absolute offsets.

    In a LogAppendTime batch every record takes the batch's maxTimestamp, as
    Kafka's consumers read it.
    """
    header = validate_batch(buf, pos)
    payload = memoryview(buf)[pos + HEADER_SIZE : pos + header.size]
    if header.compression:
        payload = decompress(header.compression, payload, max_bytes=max_uncompressed_bytes)
    return header, _decode_records(header, payload)


def _decode_records(header: BatchHeader, data: Buffer) -> list[Record]:
    """Exactly header.records_count records filling ``data``, or CorruptBatchError."""
    records = []
    pos, end = 0, len(data)
    for _ in range(header.records_count):
        if pos >= end:
            raise CorruptBatchError(
                f"batch declares {header.records_count} records but holds {len(records)}"
            )
        raw, pos = decode_record(data, pos, end)
        if header.log_append_time:
            timestamp = header.max_timestamp
        else:
            timestamp = header.base_timestamp + raw.timestamp_delta
        records.append(
            Record(
                offset=header.base_offset + raw.offset_delta,
                timestamp=timestamp,
                key=raw.key,
                value=raw.value,
                headers=raw.headers,
                attributes=raw.attributes,
            )
        )
    if pos != end:
        raise CorruptBatchError(f"{end - pos} bytes after the last of {len(records)} records")
    return records


def iter_records(
    buf: Buffer, *, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES
) -> Iterator[Record]:
    """Records of consecutive batches, as a Fetch response's records field holds them.

    A truncated final batch is skipped: brokers cut a fetch at the byte limit,
    mid-batch, and the consumer asks again from there. Control batches
    (transaction markers) are skipped too; they carry no user records.
    """
    pos, end = 0, len(buf)
    while pos < end:
        if end - pos < LOG_OVERHEAD or pos + batch_size_at(buf, pos) > end:
            return
        header, records = decode_batch(buf, pos, max_uncompressed_bytes=max_uncompressed_bytes)
        if not header.is_control:
            yield from records
        pos += header.size
