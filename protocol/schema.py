"""A declarative DSL for Kafka message schemas, mirroring Kafka's JSON.

A module under protocol/api/ declares each request and response once, as
Kafka's ``clients/src/main/resources/common/message/*.json`` does::

    ProduceRequest = Message(
        api_key=0, name="ProduceRequest", valid_versions="0-11", flexible_versions="9+",
        fields=[
            Field("TransactionalId", "string", "3+", nullable_versions="3+", default=None),
            Field("Acks", "int16"),
            ...
        ],
    )

and gets, per version, two equivalent codecs:

- ``Message.struct(version)``: a construct declaration built from
  protocol/primitives.py. It is the readable reference.
- ``Message.decode`` / ``Message.encode``: the same layout compiled to plain
  closures over ``struct.unpack_from``, several times faster; this is what the
  broker uses on every request. tests/protocol/test_schema_agreement.py proves
  the two produce identical bytes and values for every message and version.

Values are ``Data`` objects (a dict with attribute access) keyed by the
snake_case of Kafka's names (``TopicId`` -> ``topic_id``). Encoding takes any
mapping and fills missing fields with their schema default (Kafka's: 0, "",
False, empty arrays, null for nullable strings and bytes, or the JSON's
``default``), so callers set only what they know. In flexible versions,
tagged fields travel in the TAGGED_FIELDS section: a known tag decodes into
its named field (absent ones take their default and are not written while
they equal it); unknown tags are kept as raw bytes under
``_unknown_tagged_fields`` and written back unchanged.
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any

import construct as c

from protocol import primitives as p
from protocol.errors import MalformedMessageError

UNKNOWN_TAGGED_FIELDS = "_unknown_tagged_fields"
"""Key under which a decoded struct keeps tags its schema does not know."""


class Data(dict):
    """A decoded struct: a plain dict whose keys also read as attributes."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Versions:
    """A version range as Kafka writes it: "0+", "3-5", "7" or "none"."""

    __slots__ = ("low", "high")

    def __init__(self, spec: str | None) -> None:
        if spec is None or spec == "none":
            self.low, self.high = 0, -1
        elif spec.endswith("+"):
            self.low, self.high = int(spec[:-1]), 0x7FFF
        elif "-" in spec:
            low, high = spec.split("-")
            self.low, self.high = int(low), int(high)
        else:
            self.low = self.high = int(spec)

    def __contains__(self, version: int) -> bool:
        return self.low <= version <= self.high

    def __iter__(self):
        return iter(range(self.low, self.high + 1))

    def __repr__(self) -> str:
        return f"Versions({self.low}-{self.high})"


def snake_case(name: str) -> str:
    """Kafka's CamelCase field name as a Python name: TopicId -> topic_id."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


_KAFKA_DEFAULT = object()
_FIXED = {
    "int8": (p.Int8, ">b", 0),
    "int16": (p.Int16, ">h", 0),
    "int32": (p.Int32, ">i", 0),
    "int64": (p.Int64, ">q", 0),
    "uint16": (p.UInt16, ">H", 0),
    "float64": (p.Float64, ">d", 0.0),
}
_SIZED = ("string", "bytes", "records")
_SCALARS = (*_FIXED, "bool", "uuid", *_SIZED)
_ZEROS = {
    **{name: zero for name, (_, _, zero) in _FIXED.items()},
    "bool": False,
    "uuid": uuid.UUID(int=0),
    "string": "",
    "bytes": b"",
    "records": b"",
}


class Field:
    """One field of a Kafka message, as one entry of the JSON ``fields`` list.

    ``type`` is Kafka's: a scalar ("int32", "string", "records", ...), a
    struct name with ``fields``, or an array of either ("[]int32",
    "[]TopicData"). ``flexible_versions="none"`` keeps a string non-compact in
    flexible versions (the request header's ClientId). ``ignorable`` is kept
    for fidelity with the JSON; the codecs do not need it.
    """

    def __init__(
        self,
        name: str,
        type: str,
        versions: str = "0+",
        *,
        nullable_versions: str | None = None,
        default: Any = _KAFKA_DEFAULT,
        tag: int | None = None,
        tagged_versions: str | None = None,
        fields: Iterable[Field] = (),
        ignorable: bool = False,
        flexible_versions: str | None = None,
    ) -> None:
        self.name = name
        self.py_name = snake_case(name)
        self.type = type
        self.versions = Versions(versions)
        self.nullable_versions = Versions(nullable_versions)
        self.default = default
        self.tag = tag
        self.tagged_versions = Versions(tagged_versions)
        self.fields = tuple(fields)
        self.ignorable = ignorable
        self.flexible_versions = None if flexible_versions is None else Versions(flexible_versions)
        self.is_array = type.startswith("[]")
        self.element = type[2:] if self.is_array else type
        self.is_struct = self.element not in _SCALARS
        if self.is_struct != bool(self.fields):
            raise TypeError(f"{name}: a struct type needs fields, a scalar type has none")

    def tagged_in(self, version: int) -> bool:
        return self.tag is not None and version in self.tagged_versions

    def nullable_in(self, version: int) -> bool:
        return version in self.nullable_versions

    def flexible_in(self, version: int, message_flexible: bool) -> bool:
        if self.flexible_versions is None:
            return message_flexible
        return version in self.flexible_versions

    def default_factory(self, version: int) -> Callable[[], Any]:
        """A callable returning a fresh default value for this field at ``version``."""
        nullable = self.nullable_in(version)
        if self.default is not _KAFKA_DEFAULT and (self.default is not None or nullable):
            value = self.default
            return lambda: value
        if self.is_array:
            return list
        if self.is_struct:
            return _struct_default_factory(self.fields, version)
        zero = None if nullable and self.element in _SIZED else _ZEROS[self.element]
        return lambda: zero


def _struct_default_factory(fields: tuple[Field, ...], version: int) -> Callable[[], Data]:
    factories = [(f.py_name, f.default_factory(version)) for f in fields if version in f.versions]
    return lambda: Data((name, make()) for name, make in factories)


class Message:
    """A request, response or header schema: Kafka's top-level JSON object."""

    def __init__(
        self,
        api_key: int | None,
        name: str,
        valid_versions: str,
        flexible_versions: str,
        fields: Iterable[Field],
    ) -> None:
        self.api_key = api_key
        self.name = name
        self.valid_versions = Versions(valid_versions)
        self.flexible_versions = Versions(flexible_versions)
        self.fields = tuple(fields)
        self._struct = cache(self._compile_struct)
        self._codec = cache(self._compile_codec)

    def __repr__(self) -> str:
        return f"<Message {self.name} v{self.valid_versions.low}-{self.valid_versions.high}>"

    def is_flexible(self, version: int) -> bool:
        return version in self.flexible_versions

    def struct(self, version: int) -> c.Construct:
        """The construct declaration of this message at ``version`` (cached)."""
        return self._struct(self._checked(version))

    def decode(self, data: bytes, version: int, offset: int = 0) -> tuple[Data, int]:
        """Parse the body at ``data[offset:]``; return it and the offset after it.

        Raises MalformedMessageError on bytes that do not fit the schema.
        """
        read = self._codec(self._checked(version))[0]
        try:
            return read(data, offset)
        except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
            raise MalformedMessageError(f"{self.name} v{version}: {exc}") from exc

    def encode(self, obj: Mapping[str, Any], version: int) -> bytes:
        """Serialize ``obj`` at ``version``; missing fields take their defaults."""
        out = bytearray()
        self.encode_into(out, obj, version)
        return bytes(out)

    def encode_into(self, out: bytearray, obj: Mapping[str, Any], version: int) -> None:
        """Append the encoding of ``obj`` to ``out`` (saves a copy when framing)."""
        self._codec(self._checked(version))[1](out, obj)

    def default(self, version: int) -> Data:
        """Every field of this version at its default: a template to fill in."""
        return _struct_default_factory(self.fields, self._checked(version))()

    def _checked(self, version: int) -> int:
        if version not in self.valid_versions:
            raise ValueError(f"{self.name} has no version {version}")
        return version

    def _compile_struct(self, version: int) -> c.Construct:
        return _construct_struct(self.fields, version, self.is_flexible(version))

    def _compile_codec(self, version: int) -> tuple[Callable, Callable]:
        return _codec_struct(self.fields, version, self.is_flexible(version))


# -- the construct declaration (reference) -------------------------------------


def _construct_scalar(field: Field, version: int, flexible: bool) -> c.Construct:
    element = field.element
    if element in _FIXED:
        return _FIXED[element][0]
    if element == "bool":
        return p.Boolean
    if element == "uuid":
        return p.Uuid
    nullable = field.nullable_in(version) and not field.is_array
    compact = field.flexible_in(version, flexible)
    if element == "string":
        table = {
            (False, False): p.String,
            (False, True): p.NullableString,
            (True, False): p.CompactString,
            (True, True): p.CompactNullableString,
        }
    else:
        table = {
            (False, False): p.Bytes,
            (False, True): p.NullableBytes,
            (True, False): p.CompactBytes,
            (True, True): p.CompactNullableBytes,
        }
    return table[compact, nullable]


def _construct_field(field: Field, version: int, flexible: bool) -> c.Construct:
    if field.is_struct:
        element = _construct_struct(field.fields, version, flexible)
    else:
        element = _construct_scalar(field, version, flexible)
    if not field.is_array:
        return element
    return p.Array(element, compact=flexible, nullable=field.nullable_in(version))


def _construct_struct(fields: tuple[Field, ...], version: int, flexible: bool) -> c.Construct:
    regular, tagged = [], {}
    for f in fields:
        if version not in f.versions:
            continue
        entry = (f.py_name, _construct_field(f, version, flexible), f.default_factory(version))
        if flexible and f.tagged_in(version):
            tagged[f.tag] = entry
        else:
            regular.append(entry)
    return _KafkaStruct(regular, tagged, flexible)


class _KafkaStruct(c.Construct):
    """A Kafka struct: fields in order, then (when flexible) TAGGED_FIELDS
    whose known tags map to named fields. Builds from dicts with defaults."""

    def __init__(self, regular: list, tagged: dict, flexible: bool) -> None:
        super().__init__()
        self.regular = regular
        self.tagged = tagged
        # A tagged value must fill its size exactly: parse it followed by Terminated.
        self.tagged_parsers = {
            tag: c.FocusedSeq("value", "value" / sub, c.Terminated)
            for tag, (_, sub, _) in tagged.items()
        }
        self.flexible = flexible

    def _parse(self, stream, context, path):
        obj = Data()
        for name, sub, _ in self.regular:
            obj[name] = sub._parsereport(stream, context, path)
        if not self.flexible:
            return obj
        raw = p.TaggedFields._parsereport(stream, context, path)
        for name, _, make in self.tagged.values():
            obj[name] = make()
        unknown = {}
        for tag, data in raw.items():
            if tag in self.tagged:
                obj[self.tagged[tag][0]] = self.tagged_parsers[tag].parse(data)
            else:
                unknown[tag] = data
        if unknown:
            obj[UNKNOWN_TAGGED_FIELDS] = unknown
        return obj

    def _build(self, obj, stream, context, path):
        for name, sub, make in self.regular:
            sub._build(obj[name] if name in obj else make(), stream, context, path)
        if self.flexible:
            raw = dict(obj.get(UNKNOWN_TAGGED_FIELDS) or {})
            for tag, (name, sub, make) in self.tagged.items():
                default = make()
                value = obj.get(name, default)
                if value != default:
                    raw[tag] = sub.build(value)
            p.TaggedFields._build(raw, stream, context, path)
        return obj

    def _sizeof(self, context, path):
        raise c.SizeofError(path=path)


# -- the compiled codec (hot path) ----------------------------------------------
#
# Every reader is read(buf, pos) -> (value, new_pos); every writer is
# write(out: bytearray, value) -> None. Short input surfaces as struct.error or
# IndexError, which Message.decode turns into MalformedMessageError.

Reader = Callable[[Any, int], tuple[Any, int]]
Writer = Callable[[bytearray, Any], None]


def _fixed_codec(fmt: str) -> tuple[Reader, Writer]:
    s = struct.Struct(fmt)
    unpack, pack, size = s.unpack_from, s.pack, s.size

    def read(buf, pos):
        return unpack(buf, pos)[0], pos + size

    def write(out, value):
        out += pack(value)

    return read, write


_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


def _read_bool(buf, pos):
    return buf[pos] != 0, pos + 1


def _write_bool(out, value):
    out.append(1 if value else 0)


def _read_uuid(buf, pos):
    end = pos + 16
    if end > len(buf):
        raise MalformedMessageError("short uuid")
    return uuid.UUID(bytes=bytes(buf[pos:end])), end


def _write_uuid(out, value):
    out += value.bytes


def read_uvarint(buf, pos: int) -> tuple[int, int]:
    """UNSIGNED_VARINT (32-bit) at ``buf[pos]``: the value and the next offset."""
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    result, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 28:
            raise MalformedMessageError("unsigned varint longer than 5 bytes")
    if result >> 32:
        raise MalformedMessageError(f"unsigned varint {result} out of range")
    return result, pos + 1


def write_uvarint(out: bytearray, value: int) -> None:
    """Append ``value`` as UNSIGNED_VARINT."""
    if value < 0x80:
        out.append(value)
    else:
        out += p.encode_uvarint(value)


def _length_codec(compact: bool, wide: bool) -> tuple[Reader, Writer]:
    """The length prefix: UNSIGNED_VARINT(n + 1) when compact, else INT16/INT32 n."""
    if compact:

        def read(buf, pos):
            n, pos = read_uvarint(buf, pos)
            return n - 1, pos

        def write(out, n):
            write_uvarint(out, n + 1)

        return read, write
    s = _INT32 if wide else _INT16
    unpack, pack, size = s.unpack_from, s.pack, s.size

    def read_fixed(buf, pos):
        return unpack(buf, pos)[0], pos + size

    def write_fixed(out, n):
        out += pack(n)

    return read_fixed, write_fixed


def _sized_codec(text: bool, compact: bool, nullable: bool) -> tuple[Reader, Writer]:
    read_len, write_len = _length_codec(compact, wide=not text)
    max_length = 0x7FFF if text and not compact else 0x7FFFFFFF

    def read(buf, pos):
        n, pos = read_len(buf, pos)
        if n < 0:
            if n == -1 and nullable:
                return None, pos
            raise MalformedMessageError(f"invalid length {n}")
        end = pos + n
        if end > len(buf):
            raise MalformedMessageError(f"length {n} runs past the end")
        return (str(buf[pos:end], "utf-8") if text else bytes(buf[pos:end])), end

    def write(out, value):
        if value is None:
            if not nullable:
                raise ValueError("null given for a non-nullable field")
            write_len(out, -1)
            return
        data = value.encode() if text else value
        if len(data) > max_length:
            raise ValueError(f"{len(data)} bytes exceed {max_length}")
        write_len(out, len(data))
        out += data

    return read, write


def _scalar_codec(field: Field, version: int, flexible: bool) -> tuple[Reader, Writer]:
    element = field.element
    if element in _FIXED:
        return _fixed_codec(_FIXED[element][1])
    if element == "bool":
        return _read_bool, _write_bool
    if element == "uuid":
        return _read_uuid, _write_uuid
    compact = field.flexible_in(version, flexible)
    nullable = field.nullable_in(version) and not field.is_array
    return _sized_codec(element == "string", compact, nullable)


def _array_codec(
    element: tuple[Reader, Writer], compact: bool, nullable: bool
) -> tuple[Reader, Writer]:
    read_len, write_len = _length_codec(compact, wide=True)
    read_item, write_item = element

    def read(buf, pos):
        n, pos = read_len(buf, pos)
        if n < 0:
            if n == -1 and nullable:
                return None, pos
            raise MalformedMessageError(f"invalid array length {n}")
        if n > p.ARRAY_LENGTH_MAX:
            raise MalformedMessageError(f"array length {n} exceeds {p.ARRAY_LENGTH_MAX}")
        items = []
        append = items.append
        for _ in range(n):
            item, pos = read_item(buf, pos)
            append(item)
        return items, pos

    def write(out, items):
        if items is None:
            if not nullable:
                raise ValueError("null given for a non-nullable array")
            write_len(out, -1)
            return
        write_len(out, len(items))
        for item in items:
            write_item(out, item)

    return read, write


def _codec_field(field: Field, version: int, flexible: bool) -> tuple[Reader, Writer]:
    if field.is_struct:
        element = _codec_struct(field.fields, version, flexible)
    else:
        element = _scalar_codec(field, version, flexible)
    if not field.is_array:
        return element
    return _array_codec(element, flexible, field.nullable_in(version))


def _codec_struct(fields: tuple[Field, ...], version: int, flexible: bool) -> tuple[Reader, Writer]:
    regular, tagged = [], {}
    for f in fields:
        if version not in f.versions:
            continue
        read, write = _codec_field(f, version, flexible)
        make = f.default_factory(version)
        if flexible and f.tagged_in(version):
            tagged[f.tag] = (f.py_name, read, write, make)
        else:
            regular.append((f.py_name, read, write, make()))
    readers = [(name, read) for name, read, _, _ in regular]
    writers = [(name, write, default) for name, _, write, default in regular]
    if not flexible:
        return _plain_reader(readers), _plain_writer(writers)
    return _flexible_reader(readers, tagged), _flexible_writer(writers, tagged)


def _plain_reader(readers: list) -> Reader:
    def read(buf, pos):
        obj = Data()
        for name, read_field in readers:
            obj[name], pos = read_field(buf, pos)
        return obj, pos

    return read


def _plain_writer(writers: list) -> Writer:
    def write(out, obj):
        get = obj.get
        for name, write_field, default in writers:
            write_field(out, get(name, default))

    return write


def _flexible_reader(readers: list, tagged: dict) -> Reader:
    read_regular = _plain_reader(readers)

    def read(buf, pos):
        obj, pos = read_regular(buf, pos)
        for name, _, _, make in tagged.values():
            obj[name] = make()
        count, pos = read_uvarint(buf, pos)
        last = -1
        for _ in range(count):
            tag, pos = read_uvarint(buf, pos)
            size, pos = read_uvarint(buf, pos)
            end = pos + size
            if tag <= last or end > len(buf):
                raise MalformedMessageError(f"tagged field {tag} out of order or too long")
            last = tag
            if tag in tagged:
                name, read_field, _, _ = tagged[tag]
                obj[name], stop = read_field(buf, pos)
                if stop != end:
                    raise MalformedMessageError(f"tagged field {tag} has {end - stop} extra bytes")
            else:
                obj.setdefault(UNKNOWN_TAGGED_FIELDS, {})[tag] = bytes(buf[pos:end])
            pos = end
        return obj, pos

    return read


def _flexible_writer(writers: list, tagged: dict) -> Writer:
    write_regular = _plain_writer(writers)
    defaults = {tag: make() for tag, (_, _, _, make) in tagged.items()}

    def write(out, obj):
        write_regular(out, obj)
        unknown = obj.get(UNKNOWN_TAGGED_FIELDS)
        if not tagged and not unknown:
            out.append(0)
            return
        fields = dict(unknown or {})
        for tag, (name, _, write_field, _) in tagged.items():
            value = obj.get(name, defaults[tag])
            if value != defaults[tag]:
                data = bytearray()
                write_field(data, value)
                fields[tag] = data
        write_uvarint(out, len(fields))
        for tag in sorted(fields):
            write_uvarint(out, tag)
            write_uvarint(out, len(fields[tag]))
            out += fields[tag]

    return write
