"""Kafka's primitive wire types, declared with construct.

Names follow the protocol guide: INT8..INT64, UINT16, UINT32, FLOAT64,
BOOLEAN, VARINT/VARLONG (zig-zag), UNSIGNED_VARINT, UUID, the STRING and
BYTES families in classic (INT16/INT32 length), nullable and compact
(UNSIGNED_VARINT length + 1) forms, ARRAY and COMPACT_ARRAY, and
TAGGED_FIELDS. Every construct here bounds what it reads, so malformed
input raises construct.ConstructError instead of allocating without limit.
"""

from __future__ import annotations

import uuid

import construct as c

Int8 = c.Int8sb
Int16 = c.Int16sb
Int32 = c.Int32sb
Int64 = c.Int64sb
UInt16 = c.Int16ub
UInt32 = c.Int32ub
Float64 = c.Float64b


class _Boolean(c.Construct):
    def _parse(self, stream, context, path):
        return c.stream_read(stream, 1, path) != b"\x00"

    def _build(self, obj, stream, context, path):
        c.stream_write(stream, b"\x01" if obj else b"\x00", 1, path)
        return obj

    def _sizeof(self, context, path):
        return 1


Boolean = _Boolean()


# -- varints -----------------------------------------------------------------


def read_uvarint(stream, path: str, max_bytes: int) -> int:
    result = 0
    shift = 0
    for _ in range(max_bytes):
        byte = c.stream_read(stream, 1, path)[0]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
    raise c.ExplicitError(f"varint longer than {max_bytes} bytes", path=path)


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"unsigned varint cannot hold {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag_encode(value: int, bits: int) -> int:
    return (value << 1) ^ (value >> (bits - 1))


def zigzag_decode(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


class _UnsignedVarInt(c.Construct):
    def __init__(self, max_bytes: int, bits: int):
        super().__init__()
        self.max_bytes = max_bytes
        self.limit = 1 << bits

    def _parse(self, stream, context, path):
        value = read_uvarint(stream, path, self.max_bytes)
        if value >= self.limit:
            raise c.ExplicitError(f"unsigned varint {value} out of range", path=path)
        return value

    def _build(self, obj, stream, context, path):
        if not 0 <= obj < self.limit:
            raise c.ExplicitError(f"unsigned varint {obj} out of range", path=path)
        data = encode_uvarint(obj)
        c.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context, path):
        raise c.SizeofError(path=path)


class _ZigZag(c.Construct):
    def __init__(self, max_bytes: int, bits: int):
        super().__init__()
        self.max_bytes = max_bytes
        self.bits = bits

    def _parse(self, stream, context, path):
        raw = read_uvarint(stream, path, self.max_bytes)
        if raw >= 1 << self.bits:
            raise c.ExplicitError(f"varint {raw} out of range", path=path)
        return zigzag_decode(raw)

    def _build(self, obj, stream, context, path):
        half = 1 << (self.bits - 1)
        if not -half <= obj < half:
            raise c.ExplicitError(f"varint {obj} out of range", path=path)
        data = encode_uvarint(zigzag_encode(obj, self.bits) & ((1 << self.bits) - 1))
        c.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context, path):
        raise c.SizeofError(path=path)


UnsignedVarInt = _UnsignedVarInt(5, 32)
VarInt = _ZigZag(5, 32)
VarLong = _ZigZag(10, 64)


# -- strings and bytes -------------------------------------------------------


class _Sized(c.Construct):
    """A length-prefixed byte string; ``compact`` uses UNSIGNED_VARINT(len+1).

    ``nullable`` admits None (length -1, or 0 when compact); ``text`` decodes
    UTF-8. ``max_length`` caps what a peer can make us allocate.
    """

    def __init__(self, *, compact: bool, nullable: bool, text: bool, wide: bool = False):
        super().__init__()
        self.compact = compact
        self.nullable = nullable
        self.text = text
        self.length_field = Int32 if wide else Int16
        self.max_length = 0x7FFFFFFF if wide or compact else 0x7FFF

    def _read_length(self, stream, context, path) -> int | None:
        if self.compact:
            n = UnsignedVarInt._parse(stream, context, path) - 1
        else:
            n = self.length_field._parsereport(stream, context, path)
        if n < 0:
            if n == -1 and self.nullable:
                return None
            raise c.ExplicitError(f"invalid length {n}", path=path)
        return n

    def _parse(self, stream, context, path):
        n = self._read_length(stream, context, path)
        if n is None:
            return None
        data = c.stream_read(stream, n, path)
        if not self.text:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise c.ExplicitError(f"invalid UTF-8: {exc}", path=path) from None

    def _build(self, obj, stream, context, path):
        if obj is None:
            if not self.nullable:
                raise c.ExplicitError("null given for a non-nullable field", path=path)
            n, data = -1, b""
        else:
            data = obj.encode("utf-8") if self.text else bytes(obj)
            n = len(data)
            if n > self.max_length:
                raise c.ExplicitError(f"{n} bytes exceed {self.max_length}", path=path)
        if self.compact:
            UnsignedVarInt._build(n + 1, stream, context, path)
        else:
            self.length_field._build(n, stream, context, path)
        c.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context, path):
        raise c.SizeofError(path=path)


String = _Sized(compact=False, nullable=False, text=True)
NullableString = _Sized(compact=False, nullable=True, text=True)
CompactString = _Sized(compact=True, nullable=False, text=True)
CompactNullableString = _Sized(compact=True, nullable=True, text=True)
Bytes = _Sized(compact=False, nullable=False, text=False, wide=True)
NullableBytes = _Sized(compact=False, nullable=True, text=False, wide=True)
CompactBytes = _Sized(compact=True, nullable=False, text=False)
CompactNullableBytes = _Sized(compact=True, nullable=True, text=False)
# RECORDS is NULLABLE_BYTES (COMPACT_RECORDS when flexible) holding record batches.
Records = NullableBytes
CompactRecords = CompactNullableBytes


class _Uuid(c.Construct):
    def _parse(self, stream, context, path):
        return uuid.UUID(bytes=c.stream_read(stream, 16, path))

    def _build(self, obj, stream, context, path):
        c.stream_write(stream, obj.bytes, 16, path)
        return obj

    def _sizeof(self, context, path):
        return 16


Uuid = _Uuid()


# -- arrays ------------------------------------------------------------------

ARRAY_LENGTH_MAX = 1 << 20
"""No request we serve legitimately holds a million elements in one array;
a larger count is a malformed frame, refused before anything is allocated."""


class Array(c.Construct):
    """ARRAY (INT32 count, -1 = null) or COMPACT_ARRAY (UNSIGNED_VARINT count + 1)."""

    def __init__(self, subcon, *, compact: bool = False, nullable: bool = False):
        super().__init__()
        self.subcon = c.Renamed(subcon) if not isinstance(subcon, c.Construct) else subcon
        self.compact = compact
        self.nullable = nullable

    def _parse(self, stream, context, path):
        if self.compact:
            n = UnsignedVarInt._parse(stream, context, path) - 1
        else:
            n = Int32._parsereport(stream, context, path)
        if n < 0:
            if n == -1 and self.nullable:
                return None
            raise c.ExplicitError(f"invalid array length {n}", path=path)
        if n > ARRAY_LENGTH_MAX:
            raise c.ExplicitError(f"array length {n} exceeds {ARRAY_LENGTH_MAX}", path=path)
        parse = self.subcon._parsereport
        return [parse(stream, context, path) for _ in range(n)]

    def _build(self, obj, stream, context, path):
        if obj is None:
            if not self.nullable:
                raise c.ExplicitError("null given for a non-nullable array", path=path)
            n = -1
        else:
            n = len(obj)
        if self.compact:
            UnsignedVarInt._build(n + 1, stream, context, path)
        else:
            Int32._build(n, stream, context, path)
        for item in obj or ():
            self.subcon._build(item, stream, context, path)
        return obj

    def _sizeof(self, context, path):
        raise c.SizeofError(path=path)


# -- tagged fields -----------------------------------------------------------


class _TaggedFields(c.Construct):
    """TAGGED_FIELDS as a dict {tag: raw bytes}; known tags are decoded by the
    message schema, unknown ones are kept opaque as the protocol requires."""

    def _parse(self, stream, context, path):
        count = UnsignedVarInt._parse(stream, context, path)
        if count > ARRAY_LENGTH_MAX:
            raise c.ExplicitError(f"{count} tagged fields", path=path)
        fields: dict[int, bytes] = {}
        last = -1
        for _ in range(count):
            tag = UnsignedVarInt._parse(stream, context, path)
            if tag <= last:
                raise c.ExplicitError(f"tagged field {tag} out of order", path=path)
            last = tag
            size = UnsignedVarInt._parse(stream, context, path)
            fields[tag] = c.stream_read(stream, size, path)
        return fields

    def _build(self, obj, stream, context, path):
        obj = obj or {}
        UnsignedVarInt._build(len(obj), stream, context, path)
        for tag in sorted(obj):
            data = obj[tag]
            UnsignedVarInt._build(tag, stream, context, path)
            UnsignedVarInt._build(len(data), stream, context, path)
            c.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context, path):
        raise c.SizeofError(path=path)


TaggedFields = _TaggedFields()
