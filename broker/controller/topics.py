"""Topic commands: CreateTopics, DeleteTopics, CreatePartitions.

Each command validates against the current image and returns
(records, results) without changing anything; the caller appends the records
to the metadata log and replays them. Errors are Kafka's codes with a message.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Protocol

from broker.controller.image import MetadataImage
from broker.controller.records import (
    ConfigRecord,
    MetadataRecord,
    PartitionRecord,
    RemoveTopicRecord,
    TopicRecord,
)
from protocol.errors import ErrorCode

TOPIC_NAME_MAX = 249
_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
PARTITIONS_MAX = 10000
"""Partitions one topic may have: every partition costs open files and memory."""


class RandomBits(Protocol):
    def getrandbits(self, k: int) -> int: ...


@dataclass(frozen=True, slots=True)
class TopicResult:
    name: str
    error: ErrorCode = ErrorCode.NONE
    message: str | None = None
    num_partitions: int = -1
    replication_factor: int = -1


@dataclass(frozen=True, slots=True)
class NewTopic:
    name: str
    num_partitions: int  # -1: broker default
    replication_factor: int  # -1: broker default
    assignments: dict[int, tuple[int, ...]]  # partition -> replicas, when given
    configs: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class TopicDefaults:
    num_partitions: int
    replication_factor: int


# -- topic-level configs -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicConfigSpec:
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] | None = None


LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
TOPIC_CONFIGS: dict[str, TopicConfigSpec] = {
    "retention.ms": TopicConfigSpec(-1, LONG_MAX),
    "retention.bytes": TopicConfigSpec(-1, LONG_MAX),
    "segment.bytes": TopicConfigSpec(14, INT_MAX),
    "segment.ms": TopicConfigSpec(1, LONG_MAX),
    "min.insync.replicas": TopicConfigSpec(1, INT_MAX),
    "max.message.bytes": TopicConfigSpec(0, INT_MAX),
    "flush.messages": TopicConfigSpec(1, LONG_MAX),
    "flush.ms": TopicConfigSpec(0, LONG_MAX),
    "cleanup.policy": TopicConfigSpec(choices=("delete",)),
}
"""Topic configs trilog honours. cleanup.policy=compact is refused: no log cleaner yet."""


def validate_topic_config(name: str, value: str | None) -> str | None:
    """Why (name, value) is not an acceptable topic config, or None."""
    spec = TOPIC_CONFIGS.get(name)
    if spec is None:
        return f"unknown or unsupported topic config '{name}'"
    if value is None:
        return f"config '{name}' needs a value"
    if spec.choices is not None:
        if value not in spec.choices:
            return f"config '{name}' must be one of {', '.join(spec.choices)}, got '{value}'"
        return None
    try:
        number = int(value)
    except ValueError:
        return f"config '{name}' must be an integer, got '{value}'"
    if not spec.lo <= number <= spec.hi:
        return f"config '{name}' must be in {spec.lo}..{spec.hi}, got {number}"
    return None


def validate_topic_name(name: str) -> str | None:
    """Kafka's topic name rules; None when legal."""
    if not name:
        return "topic name is empty"
    if name in (".", ".."):
        return f"topic name cannot be '{name}'"
    if len(name) > TOPIC_NAME_MAX:
        return f"topic name is longer than {TOPIC_NAME_MAX} characters"
    if not _LEGAL_NAME.match(name):
        return f"topic name '{name}' has characters other than ASCII letters, digits, '.', '_', '-'"
    return None


def _colliding_name(image: MetadataImage, name: str) -> str | None:
    """Kafka refuses names equal once '.' and '_' are treated alike (metric names collide)."""
    key = name.replace(".", "_")
    for existing in image.topics:
        if existing != name and existing.replace(".", "_") == key:
            return existing
    return None


# -- commands -----------------------------------------------------------------------


def assign_replicas(
    num_partitions: int, replication_factor: int, brokers: list[int], start: int
) -> dict[int, tuple[int, ...]]:
    """Round-robin assignment, leaders spread from `start` (Kafka's rack-unaware scheme)."""
    ordered = sorted(brokers)
    n = len(ordered)
    assert 0 < replication_factor <= n
    return {
        p: tuple(ordered[(start + p + i) % n] for i in range(replication_factor))
        for p in range(num_partitions)
    }


def create_topic(
    image: MetadataImage,
    topic: NewTopic,
    live_brokers: list[int],
    defaults: TopicDefaults,
    rng: RandomBits,
) -> tuple[list[MetadataRecord], TopicResult]:
    """Validate one new topic and return the records that create it."""
    problem = _check_new_topic(image, topic, live_brokers, defaults)
    if problem is not None:
        return [], problem
    partitions = defaults.num_partitions if topic.num_partitions == -1 else topic.num_partitions
    factor = (
        defaults.replication_factor if topic.replication_factor == -1 else topic.replication_factor
    )
    if topic.assignments:
        assignment = dict(topic.assignments)
        partitions, factor = len(assignment), len(next(iter(assignment.values())))
    else:
        assignment = assign_replicas(partitions, factor, live_brokers, rng.getrandbits(16))
    topic_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    records: list[MetadataRecord] = [TopicRecord(topic.name, topic_id)]
    for p, replicas in sorted(assignment.items()):
        records.append(PartitionRecord(topic_id, p, replicas, replicas, replicas[0]))
    for key, value in sorted(topic.configs.items()):
        records.append(ConfigRecord(topic.name, key, value))
    return records, TopicResult(topic.name, num_partitions=partitions, replication_factor=factor)


def _check_new_topic(
    image: MetadataImage, topic: NewTopic, live_brokers: list[int], defaults: TopicDefaults
) -> TopicResult | None:
    def refuse(code: ErrorCode, message: str) -> TopicResult:
        return TopicResult(topic.name, code, message)

    name_problem = validate_topic_name(topic.name)
    if name_problem:
        return refuse(ErrorCode.INVALID_TOPIC_EXCEPTION, name_problem)
    if topic.name in image.topics:
        return refuse(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic '{topic.name}' already exists")
    other = _colliding_name(image, topic.name)
    if other:
        return refuse(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"topic '{topic.name}' collides with existing '{other}' ('.' and '_' are alike)",
        )
    for key, value in topic.configs.items():
        problem = validate_topic_config(key, value)
        if problem:
            return refuse(ErrorCode.INVALID_CONFIG, problem)
    if topic.assignments:
        return _check_assignments(topic, live_brokers, refuse)
    partitions = defaults.num_partitions if topic.num_partitions == -1 else topic.num_partitions
    factor = (
        defaults.replication_factor if topic.replication_factor == -1 else topic.replication_factor
    )
    if not 0 < partitions <= PARTITIONS_MAX:
        return refuse(
            ErrorCode.INVALID_PARTITIONS,
            f"number of partitions must be in 1..{PARTITIONS_MAX}, got {partitions}",
        )
    if factor <= 0:
        return refuse(ErrorCode.INVALID_REPLICATION_FACTOR, "replication factor must be > 0")
    if factor > len(live_brokers):
        return refuse(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"replication factor {factor} is larger than the {len(live_brokers)} available brokers",
        )
    return None


def _check_assignments(topic: NewTopic, live_brokers: list[int], refuse) -> TopicResult | None:
    if topic.num_partitions != -1 or topic.replication_factor != -1:
        return refuse(
            ErrorCode.INVALID_REQUEST,
            "give either assignments or partitions and replication factor, not both",
        )
    if sorted(topic.assignments) != list(range(len(topic.assignments))):
        return refuse(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "partitions must be 0..N-1")
    sizes = {len(r) for r in topic.assignments.values()}
    if len(sizes) != 1 or 0 in sizes:
        return refuse(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "replica lists differ in size")
    for p, replicas in topic.assignments.items():
        if len(set(replicas)) != len(replicas):
            return refuse(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"partition {p} repeats a broker")
        unknown = [b for b in replicas if b not in live_brokers]
        if unknown:
            return refuse(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"partition {p}: unknown brokers {unknown}"
            )
    return None


def delete_topic(image: MetadataImage, name: str) -> tuple[list[MetadataRecord], TopicResult]:
    topic = image.topic(name)
    if topic is None:
        return [], TopicResult(
            name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic '{name}' does not exist"
        )
    return [RemoveTopicRecord(topic.topic_id)], TopicResult(name)


def create_partitions(
    image: MetadataImage,
    name: str,
    count: int,
    assignments: list[tuple[int, ...]] | None,
    live_brokers: list[int],
) -> tuple[list[MetadataRecord], TopicResult]:
    """Grow a topic to `count` partitions (Kafka never shrinks one)."""
    topic = image.topic(name)
    if topic is None:
        return [], TopicResult(
            name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic '{name}' does not exist"
        )
    current = len(topic.partitions)
    if count <= current:
        return [], TopicResult(
            name,
            ErrorCode.INVALID_PARTITIONS,
            f"topic has {current} partitions; the new count {count} must be larger",
        )
    if count > PARTITIONS_MAX:
        return [], TopicResult(
            name, ErrorCode.INVALID_PARTITIONS, f"at most {PARTITIONS_MAX} partitions"
        )
    factor = len(topic.partitions[0].replicas)
    new = count - current
    if assignments is not None:
        if len(assignments) != new or any(len(a) != factor for a in assignments):
            return [], TopicResult(
                name,
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"need {new} assignments of {factor} brokers each",
            )
        if any(b not in live_brokers for a in assignments for b in a):
            return [], TopicResult(
                name, ErrorCode.INVALID_REPLICA_ASSIGNMENT, "assignment names unknown brokers"
            )
        plan = {current + i: tuple(a) for i, a in enumerate(assignments)}
    elif factor > len(live_brokers):
        return [], TopicResult(
            name,
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"replication factor {factor} is larger than the {len(live_brokers)} brokers",
        )
    else:
        spread = assign_replicas(count, factor, live_brokers, 0)
        plan = {p: spread[p] for p in range(current, count)}
    records: list[MetadataRecord] = [
        PartitionRecord(topic.topic_id, p, replicas, replicas, replicas[0])
        for p, replicas in plan.items()
    ]
    return records, TopicResult(name, num_partitions=count, replication_factor=factor)
