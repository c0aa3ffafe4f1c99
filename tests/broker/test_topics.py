"""Topic commands: validation with Kafka's error codes, assignment, replay."""

import random

import pytest

from broker.controller.image import MetadataImage
from broker.controller.records import decode_record, encode_record
from broker.controller.topics import (
    NewTopic,
    TopicDefaults,
    create_partitions,
    create_topic,
    delete_topic,
    validate_topic_config,
    validate_topic_name,
)
from protocol.errors import ErrorCode

DEFAULTS = TopicDefaults(num_partitions=1, replication_factor=1)


def create(image, name, partitions=3, factor=1, configs=None, brokers=(1,)):
    records, result = create_topic(
        image,
        NewTopic(name, partitions, factor, {}, configs or {}),
        list(brokers),
        DEFAULTS,
        random.Random(1),
    )
    for record in records:
        image.replay(decode_record(encode_record(record)))
    return result


def test_create_then_describe_through_replay():
    image = MetadataImage()
    result = create(image, "orders", 3, configs={"retention.ms": "1000"})
    assert result.error is ErrorCode.NONE
    topic = image.topic("orders")
    assert sorted(topic.partitions) == [0, 1, 2]
    assert topic.partitions[0].replicas == (1,) and topic.partitions[0].leader == 1
    assert topic.configs == {"retention.ms": "1000"}


@pytest.mark.parametrize(
    ("name", "partitions", "factor", "configs", "code"),
    [
        ("bad name!", 1, 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
        ("x" * 250, 1, 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
        ("..", 1, 1, {}, ErrorCode.INVALID_TOPIC_EXCEPTION),
        ("t", 0, 1, {}, ErrorCode.INVALID_PARTITIONS),
        ("t", 1, 2, {}, ErrorCode.INVALID_REPLICATION_FACTOR),
        ("t", 1, 1, {"retention.ms": "soon"}, ErrorCode.INVALID_CONFIG),
        ("t", 1, 1, {"cleanup.policy": "compact"}, ErrorCode.INVALID_CONFIG),
        ("t", 1, 1, {"no.such": "1"}, ErrorCode.INVALID_CONFIG),
    ],
)
def test_refusals(name, partitions, factor, configs, code):
    image = MetadataImage()
    result = create(image, name, partitions, factor, configs)
    assert result.error is code
    assert result.message
    assert image.topics == {}


def test_duplicate_and_colliding_names():
    image = MetadataImage()
    create(image, "a.b")
    assert create(image, "a.b").error is ErrorCode.TOPIC_ALREADY_EXISTS
    assert create(image, "a_b").error is ErrorCode.INVALID_TOPIC_EXCEPTION


def test_default_partitions_and_factor():
    image = MetadataImage()
    result = create(image, "t", -1, -1)
    assert (result.num_partitions, result.replication_factor) == (1, 1)


def test_assignment_spreads_leaders():
    image = MetadataImage()
    create(image, "t", 6, 3, brokers=(1, 2, 3))
    leaders = [image.topic("t").partitions[p].leader for p in range(6)]
    assert sorted(leaders) == [1, 1, 2, 2, 3, 3]
    for p in range(6):
        assert len(set(image.topic("t").partitions[p].replicas)) == 3


def test_delete_and_grow():
    image = MetadataImage()
    create(image, "t", 2)
    records, result = create_partitions(image, "t", 1, None, [1])
    assert result.error is ErrorCode.INVALID_PARTITIONS and not records
    records, result = create_partitions(image, "t", 4, None, [1])
    for r in records:
        image.replay(r)
    assert sorted(image.topic("t").partitions) == [0, 1, 2, 3]
    records, result = delete_topic(image, "t")
    for r in records:
        image.replay(r)
    assert image.topic("t") is None
    assert delete_topic(image, "t")[1].error is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_name_and_config_rules():
    assert validate_topic_name("ok-Name_1.x") is None
    assert validate_topic_config("segment.bytes", "13")
    assert validate_topic_config("segment.bytes", "1048576") is None
