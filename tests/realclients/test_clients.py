"""Real Kafka clients against a real broker process: metadata, topic creation,
10,000 keyed messages with headers, read back by both clients, seeks by offset
and by timestamp."""

from __future__ import annotations

import random
import time

import pytest

from tests.realclients.checks import (
    by_partition,
    check_acknowledged,
    check_keys_stick,
    check_read_back,
    first_at_or_after,
)
from tests.realclients.clients import CLIENTS, make_messages

pytestmark = pytest.mark.clients

MESSAGE_COUNT = 10_000
PARTITIONS = 3


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_metadata_lists_the_broker_and_created_topic(broker, client):
    kafka = CLIENTS[client](broker.bootstrap)
    assert kafka.metadata().brokers == {1: (broker.host, broker.port)}
    kafka.create_topic("created", PARTITIONS)
    view = kafka.metadata()
    assert view.topics.get("created") == PARTITIONS
    assert broker.alive()


@pytest.mark.parametrize("writer", sorted(CLIENTS))
def test_ten_thousand_messages_read_back_by_both_clients(broker, writer):
    topic = f"roundtrip-{writer}"
    producer = CLIENTS[writer](broker.bootstrap)
    producer.create_topic(topic, PARTITIONS)
    base_ms = int(time.time() * 1000) - 3_600_000
    messages = make_messages(MESSAGE_COUNT, writer, base_ms)

    acked = producer.produce(topic, messages)

    check_acknowledged(acked, PARTITIONS)
    check_keys_stick(acked)
    assert len(by_partition(acked)) == PARTITIONS, "50 keys should reach every partition"
    starts = dict.fromkeys(range(PARTITIONS), 0)
    for reader in sorted(CLIENTS):
        consumed = CLIENTS[reader](broker.bootstrap).consume(topic, starts, len(acked))
        check_read_back(consumed, acked)
    broker.assert_no_traceback()


@pytest.mark.parametrize("reader", sorted(CLIENTS))
def test_seek_to_offset_and_to_timestamp(broker, reader):
    topic = "seek"
    writer = "kafka-python" if reader == "confluent" else "confluent"
    CLIENTS[writer](broker.bootstrap).create_topic(topic, PARTITIONS)
    base_ms = int(time.time() * 1000) - 3_600_000
    acked = CLIENTS[writer](broker.bootstrap).produce(topic, make_messages(600, writer, base_ms))
    parts = by_partition(acked)
    kafka = CLIENTS[reader](broker.bootstrap)
    rng = random.Random(7)

    seek_to = {p: rng.randrange(len(items)) for p, items in parts.items()}
    wanted = [s for p, items in parts.items() for s in items[seek_to[p] :]]
    check_read_back(kafka.consume(topic, seek_to, len(wanted)), wanted)

    for target_ms in [base_ms - 1, *(base_ms + rng.randrange(600) for _ in range(5))]:
        found = kafka.offsets_for_times(topic, dict.fromkeys(parts, target_ms))
        assert found == {p: first_at_or_after(acked, p, target_ms) for p in parts}, target_ms
        starts = {p: offset for p, offset in found.items() if offset is not None}
        wanted = [s for s in acked if s.offset >= starts.get(s.partition, len(acked))]
        check_read_back(kafka.consume(topic, starts, len(wanted)), wanted)
    past_end = kafka.offsets_for_times(topic, dict.fromkeys(parts, base_ms + 600))
    assert past_end == dict.fromkeys(parts)
