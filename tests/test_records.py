"""The record codec and compression (protocol/records.py, protocol/compression.py)."""

from __future__ import annotations

import contextlib
import gzip
import io
import struct
import tracemalloc

import construct as c
import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import compression as z
from protocol.batch import (
    CONTROL_MASK,
    LOG_OVERHEAD,
    CorruptBatchError,
    InvalidBatchError,
    compute_crc,
    validate_batch,
)
from protocol.primitives import VarInt
from protocol.records import (
    RECORD,
    RawRecord,
    Record,
    build_batch,
    decode_batch,
    decode_record,
    encode_record,
    iter_records,
)

CODECS = [codec.value for codec in z.Codec]
MALFORMED = (CorruptBatchError, InvalidBatchError, z.UnsupportedCompressionError)

BLOB = st.none() | st.binary(max_size=48)
HEADERS = st.lists(st.tuples(st.text(max_size=8), BLOB), max_size=3)
TIMESTAMP = st.integers(-1, 1 << 45)
RECORD_INPUT = st.tuples(BLOB, BLOB, HEADERS, TIMESTAMP)
RAW_RECORD = st.builds(
    RawRecord,
    attributes=st.integers(-128, 127),
    timestamp_delta=st.integers(-(1 << 63), (1 << 63) - 1),
    offset_delta=st.integers(-(1 << 31), (1 << 31) - 1),
    key=BLOB,
    value=BLOB,
    headers=st.lists(st.tuples(st.text(max_size=8), BLOB), max_size=3).map(tuple),
)


def reseal(batch: bytearray) -> bytes:
    """Fix batchLength and the CRC so a test reaches the record decoder."""
    struct.pack_into(">i", batch, 8, len(batch) - LOG_OVERHEAD)
    struct.pack_into(">I", batch, 17, compute_crc(batch))
    return bytes(batch)


def with_payload(batch: bytes, payload: bytes, **header: int) -> bytes:
    """The batch with its records region replaced and header fields overridden."""
    offsets = {"attributes": (21, ">h"), "last_offset_delta": (23, ">i"), "count": (57, ">i")}
    data = bytearray(batch[:61] + payload)
    for name, value in header.items():
        offset, fmt = offsets[name]
        struct.pack_into(fmt, data, offset, value)
    return reseal(data)


def as_construct(raw: RawRecord) -> dict:
    fields = raw._asdict()
    fields["headers"] = [{"key": k, "value": v} for k, v in raw.headers]
    return fields


def from_construct(parsed: c.Container) -> RawRecord:
    headers = tuple((h.key, h.value) for h in parsed.headers)
    return RawRecord(
        parsed.attributes,
        parsed.timestamp_delta,
        parsed.offset_delta,
        parsed.key,
        parsed.value,
        headers,
    )


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """Small corruptions of valid bytes: flips, cuts, insertions."""
    index = st.integers(0, max(len(data) - 1, 0))
    flip = st.tuples(index, st.integers(1, 255)).map(
        lambda a: data[: a[0]] + bytes([data[a[0]] ^ a[1]]) + data[a[0] + 1 :] if data else data
    )
    cut = index.map(lambda i: data[:i])
    insert = st.tuples(index, st.binary(min_size=1, max_size=3)).map(
        lambda a: data[: a[0]] + a[1] + data[a[0] :]
    )
    return st.one_of(st.just(data), flip, cut, insert)


# -- the record layout: construct declaration == fast path ----------------------


@settings(max_examples=300)
@given(RAW_RECORD)
def test_fast_encode_matches_construct_declaration(raw: RawRecord) -> None:
    data = encode_record(raw)
    assert data == RECORD.build(as_construct(raw))
    assert decode_record(data) == (raw, len(data))
    assert from_construct(RECORD.parse(data)) == raw


RECORD_WITH_TAIL = c.Sequence(RECORD, c.Tell)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=40), RAW_RECORD.map(encode_record).flatmap(mutations)))
def test_fast_decode_agrees_with_construct_on_any_bytes(data: bytes) -> None:
    """Whatever the bytes, both accept the same record or both refuse."""
    try:
        parsed, end = RECORD_WITH_TAIL.parse(data)
    except c.ConstructError:
        with pytest.raises(CorruptBatchError):
            decode_record(data)
    else:
        assert decode_record(data) == (from_construct(parsed), end)


def test_known_record_bytes() -> None:
    raw = RawRecord(0, 0, 0, b"k", None, (("h", b"v"),))
    body = "00" + "00" + "00" + "026b" + "01" + "02" + "0268" + "0276"
    assert encode_record(raw).hex() == "16" + body


@pytest.mark.parametrize(
    "raw",
    [
        RawRecord(128, 0, 0, None, None, ()),
        RawRecord(0, 1 << 63, 0, None, None, ()),
        RawRecord(0, 0, 1 << 31, None, None, ()),
    ],
)
def test_out_of_range_record_fields_are_refused(raw: RawRecord) -> None:
    with pytest.raises(ValueError):
        encode_record(raw)


def framed(body_hex: str) -> bytes:
    """A record body behind its correct length prefix."""
    body = bytes.fromhex(body_hex)
    return VarInt.build(len(body)) + body


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "past the end"),
        (b"\x00", "invalid record length 0"),
        (b"\x01", "invalid record length -1"),
        (b"\x0a\x00", "runs past the end of the batch"),
        (framed("00 00 00 03 01 00"), "invalid length -2"),
        (framed("00 00 00 01 01 01"), "invalid header count -1"),
        (framed("00 00 00 01 01 02 01 01"), "null header key"),
        (framed("00 00 00 01 01 02 04 c328 01"), "not UTF-8"),
        (framed("00 00 00 01 01 00 ff"), "1 unread bytes"),
        (framed("00" + "ff" * 10 + "01 00 01 01 00"), "longer than 10 bytes"),
        (framed("00 00 ffffffff1f 01 01 00"), "out of the int32 range"),
        (framed("00 00 00 01 08 6162"), "runs past the end of the record"),
    ],
)
def test_malformed_records_raise_corrupt(data: bytes, reason: str) -> None:
    with pytest.raises(CorruptBatchError, match=reason):
        decode_record(data)
    with pytest.raises(c.ConstructError):
        RECORD.parse(data)


# -- whole batches ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.lists(RECORD_INPUT, min_size=1, max_size=8),
    st.sampled_from(CODECS),
    st.integers(0, 1 << 40),
    st.booleans(),
)
def test_build_decode_round_trip(records: list, codec: int, base_offset: int, txn: bool) -> None:
    batch = build_batch(
        records,
        base_offset=base_offset,
        compression=codec,
        producer_id=9 if txn else -1,
        producer_epoch=1 if txn else -1,
        base_sequence=5 if txn else -1,
        is_transactional=txn,
    )
    header, decoded = decode_batch(batch)
    assert header.size == len(batch)
    assert header.compression == codec
    assert header.records_count == len(records)
    assert header.last_offset == base_offset + len(records) - 1
    assert header.base_timestamp == records[0][3]
    assert header.max_timestamp == max(r[3] for r in records)
    assert header.is_transactional == txn
    assert (header.producer_id, header.base_sequence) == ((9, 5) if txn else (-1, -1))
    assert decoded == [
        Record(base_offset + i, ts, key, value, tuple(headers))
        for i, (key, value, headers, ts) in enumerate(records)
    ]


def test_log_append_time_records_take_max_timestamp() -> None:
    records = [(b"a", b"1", [], 10), (b"b", b"2", [], 30), (b"c", b"3", [], 20)]
    header, decoded = decode_batch(build_batch(records, timestamp_type=1))
    assert header.log_append_time
    assert [r.timestamp for r in decoded] == [30, 30, 30]


def test_decode_batch_at_an_offset() -> None:
    first = build_batch([(b"a", b"1", [], 1)], base_offset=0)
    second = build_batch([(b"b", b"2", [], 2)], base_offset=1)
    header, decoded = decode_batch(first + second, len(first))
    assert header.base_offset == 1
    assert decoded == [Record(1, 2, b"b", b"2")]


def test_build_batch_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        build_batch([])
    with pytest.raises(z.UnsupportedCompressionError):
        build_batch([(None, None, [], 0)], compression=5)
    with pytest.raises(ValueError):
        build_batch([(None, None, [], 0), (None, None, [], 1 << 63)])


SAMPLE = [(b"key-%d" % i, b"value " * 10, [("h", b"x")], 1_000 + i) for i in range(4)]


def test_record_count_mismatch_is_corrupt() -> None:
    batch = build_batch(SAMPLE)
    more = with_payload(batch, batch[61:], count=5, last_offset_delta=4)
    with pytest.raises(CorruptBatchError, match="declares 5 records"):
        decode_batch(more)
    fewer = with_payload(batch, batch[61:], count=3, last_offset_delta=2)
    with pytest.raises(CorruptBatchError, match="after the last"):
        decode_batch(fewer)


def test_trailing_garbage_is_corrupt() -> None:
    batch = build_batch(SAMPLE)
    with pytest.raises(CorruptBatchError, match="after the last"):
        decode_batch(with_payload(batch, batch[61:] + b"\x00"))


@pytest.mark.parametrize("codec", CODECS[1:])
def test_corrupt_compressed_payload_is_corrupt(codec: int) -> None:
    batch = build_batch(SAMPLE, compression=codec)
    with pytest.raises(CorruptBatchError):
        decode_batch(with_payload(batch, b"\x00" * 20))
    with pytest.raises(CorruptBatchError):
        decode_batch(with_payload(batch, batch[61:-3]))


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_codec_in_attributes(codec: int) -> None:
    batch = build_batch(SAMPLE)
    with pytest.raises(z.UnsupportedCompressionError):
        decode_batch(with_payload(batch, batch[61:], attributes=codec))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CODECS), st.data())
def test_mutated_batches_raise_only_batch_errors(codec: int, data: st.DataObject) -> None:
    """Corrupt the records region (or the header) and fix the CRC, so the
    mutation reaches the decompressor and the record decoder."""
    batch = build_batch(SAMPLE, compression=codec)
    payload = data.draw(mutations(batch[61:]), label="payload")
    overrides = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "attributes": st.integers(0, 0x3F),
                "count": st.integers(0, 8),
                "last_offset_delta": st.integers(-1, 8),
            },
        ),
        label="header",
    )
    mutated = with_payload(batch, payload, **overrides)
    with contextlib.suppress(*MALFORMED):
        decode_batch(mutated, max_uncompressed_bytes=1 << 16)
    sealed_or_not = data.draw(mutations(batch), label="raw bytes")
    with contextlib.suppress(*MALFORMED):
        list(iter_records(sealed_or_not))


# -- fetch responses: several batches -------------------------------------------


def test_iter_records_over_several_batches() -> None:
    first = build_batch(SAMPLE[:2], base_offset=0, compression=1)
    second = build_batch(SAMPLE[2:], base_offset=2, compression=4)
    records = list(iter_records(first + second))
    assert [r.offset for r in records] == [0, 1, 2, 3]
    assert [r.key for r in records] == [s[0] for s in SAMPLE]
    assert list(iter_records(b"")) == []


def test_iter_records_skips_a_truncated_final_batch() -> None:
    first = build_batch(SAMPLE[:2], base_offset=0)
    second = build_batch(SAMPLE[2:], base_offset=2, compression=3)
    for cut in range(len(second)):
        offsets = [r.offset for r in iter_records(first + second[:cut])]
        assert offsets == [0, 1]


def test_iter_records_refuses_a_corrupt_middle_batch() -> None:
    first = bytearray(build_batch(SAMPLE[:2]))
    first[-1] ^= 0xFF
    with pytest.raises(CorruptBatchError):
        list(iter_records(bytes(first) + build_batch(SAMPLE[2:], base_offset=2)))


def test_iter_records_skips_control_batches() -> None:
    control = build_batch([(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00", [], 5)])
    control = with_payload(control, control[61:], attributes=CONTROL_MASK | 0x10)
    data = build_batch(SAMPLE[:1]) + control + build_batch(SAMPLE[1:2], base_offset=2)
    assert validate_batch(control).is_control
    assert [r.offset for r in iter_records(data)] == [0, 2]


# -- compression -----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(CODECS), st.binary(max_size=4096) | st.just(b"abc" * 5000))
def test_compress_round_trip(codec: int, data: bytes) -> None:
    packed = z.compress(codec, data)
    assert z.decompress(codec, packed, max_bytes=len(data)) == data


def test_codec_ids_are_kafkas() -> None:
    assert [(c.name, c.value) for c in z.Codec] == [
        ("NONE", 0),
        ("GZIP", 1),
        ("SNAPPY", 2),
        ("LZ4", 3),
        ("ZSTD", 4),
    ]
    for codec in (-1, 5, 8):
        with pytest.raises(z.UnsupportedCompressionError):
            z.compress(codec, b"")
        with pytest.raises(z.UnsupportedCompressionError):
            z.decompress(codec, b"", max_bytes=10)


def xerial(data: bytes, block_size: int) -> bytes:
    """Java's snappy framing: magic, version 1, compatible version 1, then
    int32-length-prefixed raw snappy blocks."""
    out = io.BytesIO()
    out.write(z.XERIAL_MAGIC + struct.pack(">ii", 1, 1))
    for start in range(0, len(data), block_size):
        block = bytes(cramjam.snappy.compress_raw(data[start : start + block_size]))
        out.write(struct.pack(">i", len(block)) + block)
    return out.getvalue()


def test_snappy_reads_raw_and_xerial() -> None:
    data = bytes(range(256)) * 300
    assert z.decompress(2, xerial(data, 32 * 1024), max_bytes=len(data)) == data
    assert z.decompress(2, xerial(b"", 1), max_bytes=0) == b""
    assert z.compress(2, data) == bytes(cramjam.snappy.compress_raw(data))  # raw: all read it
    with pytest.raises(z.DecompressedTooLargeError):
        z.decompress(2, xerial(data, 32 * 1024), max_bytes=len(data) - 1)
    with pytest.raises(z.CorruptCompressionError):
        z.decompress(2, xerial(data, 32 * 1024)[:-1], max_bytes=len(data))
    with pytest.raises(z.CorruptCompressionError):
        z.decompress(2, z.XERIAL_MAGIC + b"\x00\x00", max_bytes=10)


def test_gzip_reads_concatenated_members() -> None:
    data = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert z.decompress(1, data, max_bytes=11) == b"hello world"
    with pytest.raises(z.CorruptCompressionError):
        z.decompress(1, data + b"junk", max_bytes=100)


def test_decompression_errors_are_batch_errors() -> None:
    assert issubclass(z.CorruptCompressionError, CorruptBatchError)
    assert issubclass(z.DecompressedTooLargeError, InvalidBatchError)
    assert issubclass(z.UnsupportedCompressionError, ValueError)


BOMB_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def bombs() -> dict[int, bytes]:
    zeros = bytes(BOMB_BYTES)
    return {codec: z.compress(codec, zeros) for codec in CODECS}


@pytest.mark.parametrize("codec", CODECS)
def test_decompression_bomb_stops_at_the_cap(codec: int, bombs: dict[int, bytes]) -> None:
    cap = 256 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(z.DecompressedTooLargeError):
            z.decompress(codec, bombs[codec], max_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * cap + len(bombs[codec])
    assert len(z.decompress(codec, bombs[codec], max_bytes=BOMB_BYTES)) == BOMB_BYTES


def test_decode_batch_applies_the_cap() -> None:
    batch = build_batch([(None, bytes(1 << 20), [], 0)], compression=4)
    assert len(batch) < 1024
    with pytest.raises(InvalidBatchError, match="exceeds"):
        decode_batch(batch, max_uncompressed_bytes=64 * 1024)
    _, records = decode_batch(batch, max_uncompressed_bytes=2 << 20)
    assert records[0].value == bytes(1 << 20)


def test_output_buffer_grows_past_the_first_guess() -> None:
    """lz4/zstd decode into a buffer that doubles; 1 MiB from a tiny frame
    needs several doublings, which relies on cramjam's buffer-full error."""
    for codec in (3, 4):
        data = b"xyz" * (1 << 19)
        assert z.decompress(codec, z.compress(codec, data), max_bytes=len(data)) == data
