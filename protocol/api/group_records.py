"""The records of ``__consumer_offsets``: committed offsets and classic group metadata.

Declared field by field from Kafka's coordinator record schemas
(apache/kafka, group-coordinator/src/main/resources/common/message/):
OffsetCommitKey.json, OffsetCommitValue.json, GroupMetadataKey.json,
GroupMetadataValue.json.

A record's key and value each start with an int16 version, then the body in
that version's layout. The key version says what the record is: 0 and 1 are
an offset commit, 2 is group metadata (later versions belong to KIP-848
groups, which trilog does not keep). A null value is a tombstone: the offset
or the group is deleted. trilog writes OffsetCommitKey v1 / OffsetCommitValue
v3 and GroupMetadataKey v2 / GroupMetadataValue v3, as Kafka 3.x does, and
reads every version listed here.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from protocol.errors import MalformedMessageError
from protocol.schema import Data, Field, Message

OffsetCommitKey = Message(
    api_key=None,
    name="OffsetCommitKey",
    valid_versions="0-1",
    flexible_versions="none",
    fields=[
        Field("Group", "string", "0-1"),
        Field("Topic", "string", "0-1"),
        Field("Partition", "int32", "0-1"),
    ],
)

OffsetCommitValue = Message(
    api_key=None,
    name="OffsetCommitValue",
    valid_versions="0-4",
    flexible_versions="4+",
    fields=[
        Field("Offset", "int64"),
        Field("LeaderEpoch", "int32", "3+", default=-1, ignorable=True),
        Field("Metadata", "string"),
        Field("CommitTimestamp", "int64"),
        Field("ExpireTimestamp", "int64", "1", default=-1, ignorable=True),
    ],
)

GroupMetadataKey = Message(
    api_key=None,
    name="GroupMetadataKey",
    valid_versions="2",
    flexible_versions="none",
    fields=[Field("Group", "string", "2")],
)

GroupMetadataValue = Message(
    api_key=None,
    name="GroupMetadataValue",
    valid_versions="0-3",
    flexible_versions="none",
    fields=[
        Field("ProtocolType", "string"),
        Field("Generation", "int32"),
        Field("Protocol", "string", nullable_versions="0+"),
        Field("Leader", "string", nullable_versions="0+"),
        Field("CurrentStateTimestamp", "int64", "2+", default=-1, ignorable=True),
        Field(
            "Members",
            "[]MemberMetadata",
            fields=[
                Field("MemberId", "string"),
                Field(
                    "GroupInstanceId",
                    "string",
                    "3+",
                    nullable_versions="3+",
                    default=None,
                    ignorable=True,
                ),
                Field("ClientId", "string"),
                Field("ClientHost", "string"),
                Field("RebalanceTimeout", "int32", "1+", ignorable=True),
                Field("SessionTimeout", "int32"),
                Field("Subscription", "bytes"),
                Field("Assignment", "bytes"),
            ],
        ),
    ],
)

OFFSET_COMMIT_KEY_VERSION = 1
OFFSET_COMMIT_VALUE_VERSION = 3
GROUP_METADATA_KEY_VERSION = 2
GROUP_METADATA_VALUE_VERSION = 3

KEY_SCHEMAS: dict[int, Message] = {0: OffsetCommitKey, 1: OffsetCommitKey, 2: GroupMetadataKey}
"""Key version -> the key's schema; the key version names the record type."""

VALUE_SCHEMAS: dict[Message, Message] = {
    OffsetCommitKey: OffsetCommitValue,
    GroupMetadataKey: GroupMetadataValue,
}
"""Key schema -> the schema of values stored under such keys."""

_VERSION = struct.Struct(">h")


def encode_versioned(schema: Message, version: int, obj: Mapping[str, Any]) -> bytes:
    """An int16 version followed by ``obj`` in that version of ``schema``."""
    out = bytearray(_VERSION.pack(version))
    schema.encode_into(out, obj, version)
    return bytes(out)


def decode_versioned(data: bytes, schemas: Mapping[int, Message]) -> tuple[Message, int, Data]:
    """Read the version prefix, then the body with the schema registered for it.

    Raises MalformedMessageError for a short buffer or trailing bytes, and
    KeyError for a version ``schemas`` does not list (a record type we skip).
    """
    if len(data) < _VERSION.size:
        raise MalformedMessageError(f"record part of {len(data)} bytes has no version")
    (version,) = _VERSION.unpack_from(data)
    schema = schemas[version]
    if version not in schema.valid_versions:
        raise KeyError(version)
    body, end = schema.decode(data, version, _VERSION.size)
    if end != len(data):
        raise MalformedMessageError(f"{schema.name} v{version}: {len(data) - end} trailing bytes")
    return schema, version, body
