"""Kafka's primitive wire types (protocol/primitives.py): encodings, bounds, refusals."""

from __future__ import annotations

import uuid

import construct as c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import primitives as p

INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)


# -- varints -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (-1, "01"), (1, "02"), (63, "7e"), (-64, "7f"), (64, "8001"), (-65, "8101")],
)
def test_varint_known_encodings(value: int, encoded: str) -> None:
    assert p.VarInt.build(value).hex() == encoded
    assert p.VarLong.build(value).hex() == encoded
    assert p.VarInt.parse(bytes.fromhex(encoded)) == value


def test_varint_extremes() -> None:
    assert p.VarInt.build((1 << 31) - 1).hex() == "feffffff0f"
    assert p.VarInt.build(-(1 << 31)).hex() == "ffffffff0f"
    assert len(p.VarLong.build(-(1 << 63))) == 10
    assert p.UnsignedVarInt.build(300).hex() == "ac02"
    assert p.UnsignedVarInt.build((1 << 32) - 1).hex() == "ffffffff0f"


@settings(max_examples=200)
@given(INT32)
def test_varint_round_trip(value: int) -> None:
    data = p.VarInt.build(value)
    assert p.VarInt.parse(data) == value
    assert data == p.encode_uvarint(p.zigzag_encode(value, 32) & 0xFFFFFFFF)


@settings(max_examples=200)
@given(INT64)
def test_varlong_round_trip(value: int) -> None:
    data = p.VarLong.build(value)
    assert len(data) <= 10
    assert p.VarLong.parse(data) == value


@settings(max_examples=200)
@given(st.integers(0, (1 << 32) - 1))
def test_unsigned_varint_round_trip(value: int) -> None:
    assert p.UnsignedVarInt.parse(p.UnsignedVarInt.build(value)) == value


@settings(max_examples=200)
@given(INT64)
def test_zigzag_helpers_invert(value: int) -> None:
    encoded = p.zigzag_encode(value, 64)
    assert encoded >= 0
    assert p.zigzag_decode(encoded) == value


@pytest.mark.parametrize(
    ("con", "value"),
    [
        (p.VarInt, 1 << 31),
        (p.VarInt, -(1 << 31) - 1),
        (p.VarLong, 1 << 63),
        (p.UnsignedVarInt, -1),
        (p.UnsignedVarInt, 1 << 32),
    ],
)
def test_out_of_range_varints_are_not_built(con: c.Construct, value: int) -> None:
    with pytest.raises(c.ConstructError):
        con.build(value)


@pytest.mark.parametrize(
    ("con", "data"),
    [
        (p.VarInt, "8080808080"),  # five continuation bytes: longer than 5 bytes
        (p.VarInt, "ffffffff1f"),  # 33 bits
        (p.UnsignedVarInt, "ffffffff7f"),
        (p.VarLong, "80808080808080808080"),  # ten continuation bytes
        (p.VarLong, "ffffffffffffffffff7f"),  # 70 bits
        (p.VarInt, "80"),  # truncated
        (p.VarInt, ""),
    ],
)
def test_malformed_varints_are_refused(con: c.Construct, data: str) -> None:
    with pytest.raises(c.ConstructError):
        con.parse(bytes.fromhex(data))


def test_encode_uvarint_refuses_negative() -> None:
    with pytest.raises(ValueError):
        p.encode_uvarint(-1)


# -- fixed-width, boolean, uuid ------------------------------------------------


def test_fixed_width_ints_are_big_endian() -> None:
    assert p.Int16.build(-2).hex() == "fffe"
    assert p.Int32.build(1).hex() == "00000001"
    assert p.Int64.build(-1).hex() == "ff" * 8
    assert p.UInt32.parse(b"\xff\xff\xff\xff") == 0xFFFFFFFF


def test_boolean_and_uuid() -> None:
    assert p.Boolean.build(True) == b"\x01"
    assert p.Boolean.parse(b"\x00") is False
    assert p.Boolean.parse(b"\x02") is True  # any non-zero byte is true
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert p.Uuid.parse(p.Uuid.build(value)) == value
    assert len(p.Uuid.build(value)) == 16


# -- strings and bytes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("con", "value", "encoded"),
    [
        (p.String, "ab", "00026162"),
        (p.String, "", "0000"),
        (p.NullableString, None, "ffff"),
        (p.CompactString, "", "01"),
        (p.CompactString, "ab", "036162"),
        (p.CompactNullableString, None, "00"),
        (p.Bytes, b"\x00", "0000000100"),
        (p.NullableBytes, None, "ffffffff"),
        (p.CompactBytes, b"", "01"),
        (p.CompactNullableBytes, None, "00"),
    ],
)
def test_sized_known_encodings(con: c.Construct, value, encoded: str) -> None:
    assert con.build(value).hex() == encoded
    assert con.parse(bytes.fromhex(encoded)) == value


TEXT = st.text(max_size=40)
BLOB = st.binary(max_size=40)


@settings(max_examples=100)
@given(TEXT, st.none() | TEXT, BLOB, st.none() | BLOB)
def test_sized_round_trips(text: str, maybe_text, blob: bytes, maybe_blob) -> None:
    for con in (p.String, p.CompactString):
        assert con.parse(con.build(text)) == text
    for con in (p.NullableString, p.CompactNullableString):
        assert con.parse(con.build(maybe_text)) == maybe_text
    for con in (p.Bytes, p.CompactBytes):
        assert con.parse(con.build(blob)) == blob
    for con in (p.NullableBytes, p.CompactNullableBytes):
        assert con.parse(con.build(maybe_blob)) == maybe_blob


@pytest.mark.parametrize(
    ("con", "data"),
    [
        (p.String, "ffff"),  # null in a non-nullable string
        (p.NullableString, "fffe"),  # -2 is no length at all
        (p.String, "0005616263"),  # shorter than declared
        (p.String, "0002c328"),  # invalid UTF-8
        (p.CompactString, "00"),  # compact null in a non-nullable string
        (p.Bytes, "ffffffff"),
        (p.CompactNullableBytes, "05aa"),
    ],
)
def test_malformed_sized_are_refused(con: c.Construct, data: str) -> None:
    with pytest.raises(c.ConstructError):
        con.parse(bytes.fromhex(data))


def test_null_refused_where_not_nullable() -> None:
    for con in (p.String, p.CompactString, p.Bytes, p.CompactBytes):
        with pytest.raises(c.ConstructError):
            con.build(None)


def test_classic_string_length_is_capped() -> None:
    with pytest.raises(c.ConstructError):
        p.String.build("x" * 0x8000)


# -- arrays --------------------------------------------------------------------


@settings(max_examples=100)
@given(st.lists(INT32, max_size=20))
def test_arrays_round_trip(items: list[int]) -> None:
    classic = p.Array(p.Int32)
    compact = p.Array(p.Int32, compact=True)
    assert classic.parse(classic.build(items)) == items
    assert compact.parse(compact.build(items)) == items
    assert classic.build(items)[:4] == len(items).to_bytes(4, "big")
    assert compact.build(items)[:1] == p.UnsignedVarInt.build(len(items) + 1)[:1]


def test_nullable_arrays() -> None:
    assert p.Array(p.Int8, nullable=True).build(None).hex() == "ffffffff"
    assert p.Array(p.Int8, nullable=True).parse(b"\xff\xff\xff\xff") is None
    assert p.Array(p.Int8, compact=True, nullable=True).build(None) == b"\x00"
    assert p.Array(p.Int8, compact=True, nullable=True).parse(b"\x00") is None
    with pytest.raises(c.ConstructError):
        p.Array(p.Int8).parse(b"\xff\xff\xff\xff")
    with pytest.raises(c.ConstructError):
        p.Array(p.Int8).build(None)


def test_oversized_and_negative_array_counts_are_refused() -> None:
    too_many = p.ARRAY_LENGTH_MAX + 1
    with pytest.raises(c.ConstructError, match="exceeds"):
        p.Array(p.Int8).parse(too_many.to_bytes(4, "big"))
    with pytest.raises(c.ConstructError, match="exceeds"):
        p.Array(p.Int8, compact=True).parse(p.UnsignedVarInt.build(too_many + 1))
    with pytest.raises(c.ConstructError):
        p.Array(p.Int8).parse(b"\xff\xff\xff\xfe")  # -2
    with pytest.raises(c.ConstructError):  # a count within bounds but past the data
        p.Array(p.Int32).parse(b"\x00\x00\x00\x03\x00\x00\x00\x01")


def test_array_of_structs() -> None:
    con = p.Array(c.Struct("id" / p.Int32, "name" / p.CompactString), compact=True)
    data = con.build([{"id": 1, "name": "a"}, {"id": 2, "name": "bc"}])
    parsed = con.parse(data)
    assert [(x.id, x.name) for x in parsed] == [(1, "a"), (2, "bc")]


# -- tagged fields -------------------------------------------------------------


def test_tagged_fields_are_written_in_tag_order() -> None:
    data = p.TaggedFields.build({5: b"\xaa", 0: b"", 300: b"xy"})
    assert data.hex() == "03" + "0000" + "0501aa" + "ac02027879"
    assert p.TaggedFields.parse(data) == {0: b"", 5: b"\xaa", 300: b"xy"}
    assert p.TaggedFields.build(None) == b"\x00"
    assert p.TaggedFields.parse(b"\x00") == {}


@settings(max_examples=100)
@given(st.dictionaries(st.integers(0, 1 << 20), st.binary(max_size=8), max_size=6))
def test_tagged_fields_round_trip(fields: dict[int, bytes]) -> None:
    assert p.TaggedFields.parse(p.TaggedFields.build(fields)) == fields


@pytest.mark.parametrize(
    "data",
    [
        "02" + "0500" + "0100",  # tags out of order
        "02" + "0100" + "0100",  # duplicate tag
        "01" + "0005aa",  # size past the end
        "fdffffff0f",  # absurd count
    ],
)
def test_malformed_tagged_fields_are_refused(data: str) -> None:
    with pytest.raises(c.ConstructError):
        p.TaggedFields.parse(bytes.fromhex(data))
