"""The RecordBatch v2 header (protocol/batch.py): layout, validation, in-place rewrites."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import batch as b
from protocol.records import build_batch

INT16 = st.integers(-(1 << 15), (1 << 15) - 1)
INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)

HEADER_FIELDS = st.fixed_dictionaries(
    {
        "base_offset": INT64,
        "batch_length": INT32,
        "partition_leader_epoch": INT32,
        "magic": st.integers(-128, 127),
        "crc": st.integers(0, (1 << 32) - 1),
        "attributes": INT16,
        "last_offset_delta": INT32,
        "base_timestamp": INT64,
        "max_timestamp": INT64,
        "producer_id": INT64,
        "producer_epoch": INT16,
        "base_sequence": INT32,
        "records_count": INT32,
    }
)


def sample_batch(count: int = 3, **kwargs) -> bytes:
    records = [(b"k%d" % i, b"value-%d" % i, [("h", b"v")], 1_000 + i) for i in range(count)]
    return build_batch(records, **kwargs)


def reseal(batch: bytearray) -> bytes:
    """Fix batchLength and the CRC after a test tampered with a batch."""
    struct.pack_into(">i", batch, 8, len(batch) - b.LOG_OVERHEAD)
    struct.pack_into(">I", batch, 17, b.compute_crc(batch))
    return bytes(batch)


def tamper(batch: bytes, fmt: str, offset: int, value: int) -> bytes:
    data = bytearray(batch)
    struct.pack_into(fmt, data, offset, value)
    return reseal(data)


# -- layout ------------------------------------------------------------------


def test_header_size_is_61_both_ways() -> None:
    assert b.HEADER_SIZE == 61
    assert b.BATCH_HEADER.sizeof() == 61
    assert b.CRC_START == 21


@settings(max_examples=200)
@given(HEADER_FIELDS)
def test_construct_declaration_and_struct_path_agree(fields: dict) -> None:
    data = b.BATCH_HEADER.build(fields)
    assert len(data) == b.HEADER_SIZE
    assert b.parse_header(data) == b.BatchHeader(**fields)
    parsed = b.BATCH_HEADER.parse(data)
    assert {name: parsed[name] for name in fields} == fields


def test_parse_header_at_an_offset() -> None:
    batch = sample_batch(base_offset=42)
    header = b.parse_header(b"junk" + batch, 4)
    assert header.base_offset == 42
    assert b.batch_size_at(b"junk" + batch, 4) == len(batch)


def test_header_properties() -> None:
    header = b.validate_batch(
        sample_batch(
            5,
            base_offset=100,
            compression=1,
            producer_id=7,
            producer_epoch=2,
            base_sequence=0x7FFFFFFE,
            is_transactional=True,
            timestamp_type=1,
        )
    )
    assert header.last_offset == 104
    assert header.compression == 1
    assert header.is_transactional
    assert header.log_append_time
    assert not header.is_control
    assert header.last_sequence == 2  # sequences wrap at int32 max
    assert header.size == header.batch_length + b.LOG_OVERHEAD
    assert b.validate_batch(sample_batch()).last_sequence == b.NO_SEQUENCE


# -- validation ----------------------------------------------------------------


def test_valid_batch_passes() -> None:
    batch = sample_batch()
    header = b.validate_batch(batch)
    assert header.size == len(batch)
    assert header.magic == b.MAGIC_V2
    assert header.records_count == 3
    assert header.crc == b.compute_crc(batch) == b.crc32c(batch[b.CRC_START :])


def test_validate_at_an_offset_reads_only_its_batch() -> None:
    batch = sample_batch()
    assert b.validate_batch(b"\x00" * 7 + batch + b"trailing", 7).size == len(batch)


@pytest.mark.parametrize("size", [0, 1, 12, 60])
def test_short_buffer_is_corrupt(size: int) -> None:
    with pytest.raises(b.CorruptBatchError, match="header truncated"):
        b.validate_batch(sample_batch()[:size])


def test_truncated_batch_is_corrupt() -> None:
    batch = sample_batch()
    with pytest.raises(b.CorruptBatchError, match="batch truncated"):
        b.validate_batch(batch[:-1])


@pytest.mark.parametrize("magic", [0, 1, 3, -1])
def test_wrong_magic_is_corrupt(magic: int) -> None:
    batch = tamper(sample_batch(), ">b", 16, magic)
    with pytest.raises(b.CorruptBatchError, match="magic"):
        b.validate_batch(batch)


@pytest.mark.parametrize("length", [-1, 0, 48])
def test_length_below_header_is_corrupt(length: int) -> None:
    data = bytearray(sample_batch())
    struct.pack_into(">i", data, 8, length)
    with pytest.raises(b.CorruptBatchError, match="below the header"):
        b.validate_batch(data)


def test_length_overrun_is_corrupt() -> None:
    data = bytearray(sample_batch())
    struct.pack_into(">i", data, 8, len(data))  # 12 bytes more than there are
    with pytest.raises(b.CorruptBatchError, match="truncated"):
        b.validate_batch(data)


def test_bad_crc_is_corrupt() -> None:
    data = bytearray(sample_batch())
    data[-1] ^= 0x01
    with pytest.raises(b.CorruptBatchError, match="CRC"):
        b.validate_batch(data)


@settings(max_examples=200)
@given(st.data())
def test_any_byte_flip_from_magic_on_is_caught(data: st.DataObject) -> None:
    """Magic, the CRC itself and everything the CRC covers; the 12 bytes before
    are baseOffset/batchLength (checked above) and partitionLeaderEpoch (free)."""
    batch = bytearray(sample_batch())
    index = data.draw(st.integers(16, len(batch) - 1))
    batch[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(b.CorruptBatchError):
        b.validate_batch(batch)


def test_max_batch_bytes_is_a_rule_not_corruption() -> None:
    batch = sample_batch()
    assert b.validate_batch(batch, max_batch_bytes=len(batch)).size == len(batch)
    with pytest.raises(b.InvalidBatchError, match="exceeds"):
        b.validate_batch(batch, max_batch_bytes=len(batch) - 1)


def test_last_offset_delta_must_match_count() -> None:
    batch = tamper(sample_batch(3), ">i", 23, 5)
    with pytest.raises(b.InvalidBatchError, match="last offset delta"):
        b.validate_batch(batch)


@pytest.mark.parametrize(("offset", "value"), [(57, -1), (23, -1)])
def test_negative_counts_are_invalid(offset: int, value: int) -> None:
    with pytest.raises(b.InvalidBatchError):
        b.validate_batch(tamper(sample_batch(1), ">i", offset, value))


def test_empty_batch_is_invalid_unless_control() -> None:
    data = bytearray(sample_batch(1))
    struct.pack_into(">i", data, 57, 0)
    with pytest.raises(b.InvalidBatchError, match="empty"):
        b.validate_batch(reseal(data))
    attributes = struct.unpack_from(">h", data, 21)[0]
    struct.pack_into(">h", data, 21, attributes | b.CONTROL_MASK)
    assert b.validate_batch(reseal(data)).is_control


# -- iteration and rewriting ---------------------------------------------------


def test_iter_batches_yields_positions_and_headers() -> None:
    first, second = sample_batch(2, base_offset=0), sample_batch(3, base_offset=2)
    found = list(b.iter_batches(first + second))
    assert [pos for pos, _ in found] == [0, len(first)]
    assert [header.last_offset for _, header in found] == [1, 4]
    assert list(b.iter_batches(b"")) == []


def test_iter_batches_refuses_a_truncated_tail() -> None:
    data = sample_batch() + sample_batch()[:30]
    with pytest.raises(b.CorruptBatchError):
        list(b.iter_batches(data))


def test_iter_batches_applies_the_size_cap() -> None:
    batch = sample_batch()
    with pytest.raises(b.InvalidBatchError):
        list(b.iter_batches(batch, max_batch_bytes=len(batch) - 1))


@settings(max_examples=100)
@given(INT64, INT32)
def test_set_base_offset_and_epoch_keeps_the_crc(base_offset: int, epoch: int) -> None:
    batch = sample_batch()
    data = bytearray(b"\xee" * 5 + batch)
    b.set_base_offset_and_epoch(data, 5, base_offset, epoch)
    header = b.validate_batch(data, 5)
    assert (header.base_offset, header.partition_leader_epoch) == (base_offset, epoch)
    assert header.crc == b.validate_batch(batch).crc
    assert data[5 + 8 : 5 + 12] == batch[8:12]  # nothing but the two fields changed
    assert data[5 + 16 :] == batch[16:]


def test_set_base_offset_and_epoch_through_a_memoryview() -> None:
    data = bytearray(sample_batch())
    b.set_base_offset_and_epoch(memoryview(data), 0, 1000, 7)
    header = b.validate_batch(data)
    assert (header.base_offset, header.partition_leader_epoch, header.last_offset) == (
        1000,
        7,
        1002,
    )
