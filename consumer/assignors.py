"""The consumer protocol's metadata bytes and Kafka's range and roundrobin assignors.

A classic group's members each send, in JoinGroup, one subscription per
assignor they support (protocol type ``consumer``, protocol name = assignor
name); the leader decodes every member's subscription, runs the assignor the
coordinator chose, and sends each member its assignment in SyncGroup. The
bytes are Kafka's ConsumerProtocolSubscription / ConsumerProtocolAssignment
(apache/kafka, clients/src/main/resources/common/message/): an int16 version,
then the body, never flexible. A newer version is read with the newest layout
we know and its extra trailing fields ignored, as Kafka's own consumer does,
so librdkafka (which sends v3, with RackId) and kafka-python (v0) both fit.

Assignors are pure functions of (subscriptions, partition counts): the
members are ordered as Kafka's ``MemberInfo`` orders them (static members by
group.instance.id first, then dynamic members by member id), so a mixed group
gets the same answer whichever client is the leader.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from protocol.errors import MalformedMessageError
from protocol.schema import Field, Message

PROTOCOL_TYPE = "consumer"
SUBSCRIPTION_VERSION = 1
ASSIGNMENT_VERSION = 1

_TOPIC_PARTITIONS = [Field("Topic", "string"), Field("Partitions", "[]int32")]

ConsumerProtocolSubscription = Message(
    api_key=None,
    name="ConsumerProtocolSubscription",
    valid_versions="0-3",
    flexible_versions="none",
    fields=[
        Field("Topics", "[]string"),
        Field("UserData", "bytes", nullable_versions="0+", default=None),
        Field("OwnedPartitions", "[]TopicPartition", "1+", fields=_TOPIC_PARTITIONS),
        Field("GenerationId", "int32", "2+", default=-1),
        Field("RackId", "string", "3+", nullable_versions="3+", default=None),
    ],
)

ConsumerProtocolAssignment = Message(
    api_key=None,
    name="ConsumerProtocolAssignment",
    valid_versions="0-3",
    flexible_versions="none",
    fields=[
        Field("AssignedPartitions", "[]TopicPartition", fields=_TOPIC_PARTITIONS),
        Field("UserData", "bytes", nullable_versions="0+", default=None),
    ],
)

_VERSION = struct.Struct(">h")
Assignment = dict[str, list[int]]
"""topic -> partitions, as one member is assigned them."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one member asks for: its topics (sorted), and what it owns now."""

    topics: tuple[str, ...]
    user_data: bytes | None = None
    owned: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    rack_id: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """A member as the leader sees it in the JoinGroup response."""

    member_id: str
    group_instance_id: str | None
    subscription: Subscription

    def sort_key(self) -> tuple[int, str]:
        """Kafka's MemberInfo order: static members (by instance id) before dynamic ones."""
        if self.group_instance_id is not None:
            return (0, self.group_instance_id)
        return (1, self.member_id)


def encode_subscription(subscription: Subscription) -> bytes:
    body = {
        "topics": sorted(subscription.topics),
        "user_data": subscription.user_data,
        "owned_partitions": _tp_list(subscription.owned),
    }
    return _VERSION.pack(SUBSCRIPTION_VERSION) + ConsumerProtocolSubscription.encode(
        body, SUBSCRIPTION_VERSION
    )


def decode_subscription(data: bytes) -> Subscription:
    """MalformedMessageError if the bytes are not a consumer subscription."""
    body = _decode(ConsumerProtocolSubscription, data)
    owned = {tp.topic: tuple(tp.partitions) for tp in body.get("owned_partitions", [])}
    return Subscription(tuple(sorted(body.topics)), body.user_data, owned, body.get("rack_id"))


def encode_assignment(assignment: Mapping[str, Iterable[int]]) -> bytes:
    body = {"assigned_partitions": _tp_list(assignment), "user_data": None}
    return _VERSION.pack(ASSIGNMENT_VERSION) + ConsumerProtocolAssignment.encode(
        body, ASSIGNMENT_VERSION
    )


def decode_assignment(data: bytes) -> Assignment:
    """topic -> sorted partitions; empty bytes (a member given nothing) is {}."""
    if not data:
        return {}
    body = _decode(ConsumerProtocolAssignment, data)
    out: Assignment = {}
    for tp in body.assigned_partitions:
        out.setdefault(tp.topic, []).extend(tp.partitions)
    return {topic: sorted(parts) for topic, parts in out.items()}


def _tp_list(assignment: Mapping[str, Iterable[int]]) -> list[dict]:
    return [
        {"topic": topic, "partitions": sorted(parts)} for topic, parts in sorted(assignment.items())
    ]


def _decode(schema: Message, data: bytes):
    if len(data) < _VERSION.size:
        raise MalformedMessageError(f"{schema.name} of {len(data)} bytes has no version")
    (version,) = _VERSION.unpack_from(data)
    if version < 0:
        raise MalformedMessageError(f"{schema.name}: version {version}")
    # Newer versions only append fields: read the newest layout we know, ignore the rest.
    body, _ = schema.decode(data, min(version, schema.valid_versions.high), _VERSION.size)
    return body


class Assignor(Protocol):
    """An assignment strategy, named by its Kafka protocol name."""

    name: str

    def assign(
        self, members: Iterable[Member], partitions: Mapping[str, int]
    ) -> dict[str, Assignment]:
        """member id -> its assignment; partitions maps each subscribed topic to its count."""
        ...


class RangeAssignor:
    """Kafka's RangeAssignor: per topic, consecutive ranges, the first members one larger."""

    name = "range"

    def assign(
        self, members: Iterable[Member], partitions: Mapping[str, int]
    ) -> dict[str, Assignment]:
        ordered = sorted(members, key=Member.sort_key)
        result: dict[str, Assignment] = {m.member_id: {} for m in ordered}
        for topic in sorted(partitions):
            takers = [m for m in ordered if topic in m.subscription.topics]
            if not takers:
                continue
            each, extra = divmod(partitions[topic], len(takers))
            for i, member in enumerate(takers):
                start = i * each + min(i, extra)
                count = each + (1 if i < extra else 0)
                if count:
                    result[member.member_id][topic] = list(range(start, start + count))
        return result


class RoundRobinAssignor:
    """Kafka's RoundRobinAssignor: every topic-partition in (topic, partition) order is
    dealt to the next member, in a circle, that subscribes to its topic."""

    name = "roundrobin"

    def assign(
        self, members: Iterable[Member], partitions: Mapping[str, int]
    ) -> dict[str, Assignment]:
        ordered = sorted(members, key=Member.sort_key)
        result: dict[str, Assignment] = {m.member_id: {} for m in ordered}
        if not ordered:
            return result
        turn = 0
        for topic in sorted(partitions):
            if not any(topic in m.subscription.topics for m in ordered):
                continue
            for partition in range(partitions[topic]):
                while topic not in ordered[turn % len(ordered)].subscription.topics:
                    turn += 1
                result[ordered[turn % len(ordered)].member_id].setdefault(topic, []).append(
                    partition
                )
                turn += 1
        return result


ASSIGNORS: dict[str, Assignor] = {a.name: a for a in (RangeAssignor(), RoundRobinAssignor())}
"""Protocol name -> assignor, for the names a consumer may list in its strategy."""
