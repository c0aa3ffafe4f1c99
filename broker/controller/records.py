"""Metadata records: the only way cluster metadata changes (KRaft's model).

Commands produce records; MetadataImage.replay applies them. Records are
serialized as JSON objects with a "type" field, stored as record values in a
metadata log of ordinary record batches, so replaying the log after a restart
(or, later, on another voter) yields exactly the same image.

Names follow KRaft's metadata records where Kafka has one. Unlike Kafka's
PartitionChangeRecord ours carries the resulting leader and partition epochs,
so replay can assert that they move the way the controller said they would.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, NamedTuple

NO_LEADER = -1
"""A partition with no live leader (offline)."""
NO_CHANGE = -2
"""PartitionChangeRecord.leader when the leader stays as it is (Kafka's NO_LEADER_CHANGE)."""


@dataclass(frozen=True, slots=True)
class TopicRecord:
    name: str
    topic_id: str  # UUID text


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    topic_id: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0


@dataclass(frozen=True, slots=True)
class PartitionChangeRecord:
    """A change to one partition; None (or NO_CHANGE for the leader) leaves a field as it is.

    leader_epoch grows when the leader changes (also to NO_LEADER) or replicas are
    dropped; partition_epoch grows by one on every change.
    """

    topic_id: str
    partition: int
    leader_epoch: int
    partition_epoch: int
    leader: int = NO_CHANGE
    isr: tuple[int, ...] | None = None
    replicas: tuple[int, ...] | None = None
    adding_replicas: tuple[int, ...] | None = None
    removing_replicas: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    """A topic-level config override; value None removes it."""

    topic: str
    name: str
    value: str | None


@dataclass(frozen=True, slots=True)
class RemoveTopicRecord:
    topic_id: str


@dataclass(frozen=True, slots=True)
class ProducerIdsRecord:
    """Producer ids below next_producer_id are handed out (KRaft's ProducerIdsRecord)."""

    next_producer_id: int


class Endpoint(NamedTuple):
    """One listener of a broker: clients connect to (host, port) on listener `name`."""

    name: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class RegisterBrokerRecord:
    """A broker incarnation registers; a new incarnation_id gets a new broker_epoch."""

    broker_id: int
    incarnation_id: str
    broker_epoch: int
    listeners: tuple[Endpoint, ...]
    rack: str | None = None
    fenced: bool = True
    in_controlled_shutdown: bool = False


@dataclass(frozen=True, slots=True)
class BrokerRegistrationChangeRecord:
    """Fence or unfence a broker, or mark it shutting down; None leaves a flag as it is."""

    broker_id: int
    broker_epoch: int
    fenced: bool | None = None
    in_controlled_shutdown: bool | None = None


@dataclass(frozen=True, slots=True)
class UnregisterBrokerRecord:
    broker_id: int
    broker_epoch: int


MetadataRecord = (
    TopicRecord
    | PartitionRecord
    | PartitionChangeRecord
    | ConfigRecord
    | RemoveTopicRecord
    | ProducerIdsRecord
    | RegisterBrokerRecord
    | BrokerRegistrationChangeRecord
    | UnregisterBrokerRecord
)

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        TopicRecord,
        PartitionRecord,
        PartitionChangeRecord,
        ConfigRecord,
        RemoveTopicRecord,
        ProducerIdsRecord,
        RegisterBrokerRecord,
        BrokerRegistrationChangeRecord,
        UnregisterBrokerRecord,
    )
}


def encode_record(record: MetadataRecord) -> bytes:
    data = dataclasses.asdict(record)
    data["type"] = type(record).__name__
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def decode_record(raw: bytes) -> MetadataRecord:
    """Inverse of encode_record; ValueError for anything that is not one of ours."""
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"undecodable metadata record {raw[:80]!r}") from e
    if not isinstance(data, dict):
        raise ValueError(f"metadata record is not an object: {raw[:80]!r}")
    cls = _TYPES.get(data.pop("type", None))
    if cls is None:
        raise ValueError(f"unknown metadata record {raw[:80]!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    if not set(data) <= names:
        raise ValueError(f"unknown fields {sorted(set(data) - names)} in {cls.__name__}")
    try:
        return cls(**{k: _tupled(k, v) for k, v in data.items()})
    except TypeError as e:
        raise ValueError(f"malformed {cls.__name__}: {e}") from e


def _tupled(name: str, value: Any) -> Any:
    """JSON arrays back to the tuples the records hold (listeners to Endpoints)."""
    if not isinstance(value, list):
        return value
    if name == "listeners":
        return tuple(Endpoint(*item) for item in value)
    return tuple(value)
