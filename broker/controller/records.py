"""Metadata records: the only way cluster metadata changes (KRaft's model).

Commands produce records; MetadataImage.replay applies them. Records are
serialized as JSON objects with a "type" field, stored as record values in a
metadata log of ordinary record batches, so replaying the log after a restart
(or, later, on another voter) yields exactly the same image.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


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


MetadataRecord = (
    TopicRecord | PartitionRecord | ConfigRecord | RemoveTopicRecord | ProducerIdsRecord
)

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (TopicRecord, PartitionRecord, ConfigRecord, RemoveTopicRecord, ProducerIdsRecord)
}


def encode_record(record: MetadataRecord) -> bytes:
    data = dataclasses.asdict(record)
    data["type"] = type(record).__name__
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def decode_record(raw: bytes) -> MetadataRecord:
    """Inverse of encode_record; ValueError for anything that is not one of ours."""
    data = json.loads(raw)
    cls = _TYPES.get(data.pop("type", None))
    if cls is None:
        raise ValueError(f"unknown metadata record {raw[:80]!r}")
    for f in dataclasses.fields(cls):
        if f.name in data and isinstance(data[f.name], list):
            data[f.name] = tuple(data[f.name])
    return cls(**data)
