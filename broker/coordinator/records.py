"""What the coordinator writes to ``__consumer_offsets``, and how it reads it back.

Two record types, in Kafka's key/value layout (protocol/api/group_records.py):
an offset commit keyed by (group, topic, partition), and a group's metadata
keyed by the group id. A record with a null value (a tombstone) deletes what
its key names. ``AppendRecords`` is the operation a coordinator hands the
shell inside a ``Persist`` effect.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from broker.coordinator.group import ClassicGroup, CommittedOffset
from protocol.api.group_records import (
    GROUP_METADATA_KEY_VERSION,
    GROUP_METADATA_VALUE_VERSION,
    KEY_SCHEMAS,
    OFFSET_COMMIT_KEY_VERSION,
    OFFSET_COMMIT_VALUE_VERSION,
    GroupMetadataKey,
    GroupMetadataValue,
    OffsetCommitKey,
    OffsetCommitValue,
    decode_versioned,
    encode_versioned,
)
from protocol.errors import MalformedMessageError
from protocol.schema import Data

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    protocol_type: str
    generation_id: int
    protocol_name: str | None
    leader_id: str | None
    state_timestamp_ms: int
    members: tuple[MemberSnapshot, ...]


@dataclass(frozen=True, slots=True)
class OffsetCommitRecord:
    group_id: str
    topic: str
    partition: int
    value: CommittedOffset | None  # None: the commit is deleted


@dataclass(frozen=True, slots=True)
class GroupMetadataRecord:
    group_id: str
    value: GroupSnapshot | None  # None: the group is deleted


GroupRecord = OffsetCommitRecord | GroupMetadataRecord


@dataclass(frozen=True, slots=True)
class AppendRecords:
    """Append these records, as one batch, to ``__consumer_offsets-<partition>``;
    then call the coordinator's on_persisted(token, error)."""

    partition: int
    records: tuple[tuple[bytes, bytes | None], ...]
    timestamp_ms: int
    token: int


def snapshot(group: ClassicGroup, assignments: dict[str, bytes] | None = None) -> GroupSnapshot:
    """The group as its metadata record stores it (with these assignments, if given)."""
    members = tuple(
        MemberSnapshot(
            m.member_id,
            m.group_instance_id,
            m.client_id,
            m.client_host,
            m.rebalance_timeout_ms,
            m.session_timeout_ms,
            m.metadata_for(group.protocol_name),
            m.assignment if assignments is None else assignments.get(m.member_id, b""),
        )
        for m in group.members.values()
    )
    return GroupSnapshot(
        group.protocol_type or "",
        group.generation_id,
        group.protocol_name,
        group.leader_id,
        group.state_timestamp_ms,
        members,
    )


def encode(record: GroupRecord) -> tuple[bytes, bytes | None]:
    """The record's key and value bytes (value None for a tombstone)."""
    if isinstance(record, OffsetCommitRecord):
        key = encode_versioned(
            OffsetCommitKey,
            OFFSET_COMMIT_KEY_VERSION,
            {"group": record.group_id, "topic": record.topic, "partition": record.partition},
        )
        if record.value is None:
            return key, None
        v = record.value
        value = {
            "offset": v.offset,
            "leader_epoch": v.leader_epoch,
            "metadata": v.metadata,
            "commit_timestamp": v.commit_timestamp_ms,
        }
        return key, encode_versioned(OffsetCommitValue, OFFSET_COMMIT_VALUE_VERSION, value)
    key = encode_versioned(GroupMetadataKey, GROUP_METADATA_KEY_VERSION, {"group": record.group_id})
    if record.value is None:
        return key, None
    return key, encode_versioned(
        GroupMetadataValue, GROUP_METADATA_VALUE_VERSION, _group_value(record.value)
    )


def _group_value(group: GroupSnapshot) -> dict:
    return {
        "protocol_type": group.protocol_type,
        "generation": group.generation_id,
        "protocol": group.protocol_name,
        "leader": group.leader_id,
        "current_state_timestamp": group.state_timestamp_ms,
        "members": [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "rebalance_timeout": m.rebalance_timeout_ms,
                "session_timeout": m.session_timeout_ms,
                "subscription": m.subscription,
                "assignment": m.assignment,
            }
            for m in group.members
        ],
    }


def decode(key: bytes, value: bytes | None) -> GroupRecord | None:
    """The record these bytes hold, or None for a record type trilog does not keep.

    Raises MalformedMessageError for bytes that fit no schema.
    """
    try:
        schema, _, k = decode_versioned(key, KEY_SCHEMAS)
    except KeyError:
        return None
    try:
        return _decode_value(schema, k, value)
    except KeyError as exc:
        raise MalformedMessageError(f"unknown value version {exc} under a {schema.name}") from None


def _decode_value(schema: object, k: Data, value: bytes | None) -> GroupRecord:
    if schema is OffsetCommitKey:
        committed = None
        if value is not None:
            _, _, v = decode_versioned(value, {n: OffsetCommitValue for n in range(5)})
            committed = CommittedOffset(
                v.offset, v.get("leader_epoch", -1), v.metadata, v.commit_timestamp
            )
        return OffsetCommitRecord(k.group, k.topic, k.partition, committed)
    if value is None:
        return GroupMetadataRecord(k.group, None)
    _, _, v = decode_versioned(value, {n: GroupMetadataValue for n in range(4)})
    members = tuple(
        MemberSnapshot(
            m.member_id,
            m.get("group_instance_id"),
            m.client_id,
            m.client_host,
            m.get("rebalance_timeout", m.session_timeout),
            m.session_timeout,
            m.subscription,
            m.assignment,
        )
        for m in v.members
    )
    return GroupMetadataRecord(
        k.group,
        GroupSnapshot(
            v.protocol_type,
            v.generation,
            v.protocol,
            v.leader,
            v.get("current_state_timestamp", -1),
            members,
        ),
    )


def decode_all(pairs: Iterable[tuple[bytes | None, bytes | None]]) -> Iterable[GroupRecord]:
    """Decode a partition's records in order, skipping (with a log line) what cannot be read."""
    for key, value in pairs:
        if key is None:
            log.warning("skipping a __consumer_offsets record with a null key")
            continue
        try:
            record = decode(key, value)
        except MalformedMessageError as exc:
            log.warning("skipping an unreadable __consumer_offsets record: %s", exc)
            continue
        if record is not None:
            yield record
