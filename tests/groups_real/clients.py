"""Consumer-group scenarios for each real client, as plain blocking functions.

Each runs in a worker thread and bounds every wait with a deadline. Consumers
heartbeat every 500 ms so a rebalance reaches them quickly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from tests.groups_real.conftest import import_kafka_python

DEADLINE_S = 30.0
Record = tuple[int, int, bytes]  # partition, offset, value


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=DEADLINE_S)


def produce(bootstrap: str, topic: str, partitions: int, count: int, tag: str) -> set[bytes]:
    """``count`` values spread round-robin over the partitions; returns the values."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    values = set()
    for i in range(count):
        value = f"{tag}-{i}".encode()
        producer.produce(topic, value, partition=i % partitions)
        values.add(value)
    assert producer.flush(DEADLINE_S) == 0
    return values


def poll_until(poll: Callable[[], list[Record]], done: Callable[[list[Record]], bool]) -> list:
    got: list[Record] = []
    deadline = time.monotonic() + DEADLINE_S
    while not done(got):
        assert time.monotonic() < deadline, f"gave up after {len(got)} records"
        got += poll()
    return got


# -- kafka-python -----------------------------------------------------------------------


def kafka_python_consumer(bootstrap: str, group: str, topic: str):
    kafka = import_kafka_python()
    from kafka.coordinator.assignors.range import RangePartitionAssignor

    return kafka.KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        partition_assignment_strategy=[RangePartitionAssignor],
    )


def kafka_python_poll(consumer) -> list[Record]:
    batches = consumer.poll(timeout_ms=200)
    return [(m.partition, m.offset, m.value) for ms in batches.values() for m in ms]


def kafka_python_consume_and_commit(bootstrap: str, group: str, topic: str, count: int) -> list:
    consumer = kafka_python_consumer(bootstrap, group, topic)
    try:
        got = poll_until(lambda: kafka_python_poll(consumer), lambda g: len(g) >= count)
        consumer.commit()
        return got
    finally:
        consumer.close()


# -- confluent-kafka ----------------------------------------------------------------------


def confluent_consumer(bootstrap: str, group: str, topic: str) -> confluent_kafka.Consumer:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": "range",
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    return consumer


def confluent_poll(consumer: confluent_kafka.Consumer) -> list[Record]:
    out = []
    for m in consumer.consume(num_messages=100, timeout=0.2):
        if m.error() is None:
            out.append((m.partition(), m.offset(), m.value()))
        elif m.error().code() != confluent_kafka.KafkaError._PARTITION_EOF:
            raise confluent_kafka.KafkaException(m.error())
    return out


def confluent_consume_and_commit(bootstrap: str, group: str, topic: str, count: int) -> list:
    consumer = confluent_consumer(bootstrap, group, topic)
    try:
        got = poll_until(lambda: confluent_poll(consumer), lambda g: len(g) >= count)
        consumer.commit(asynchronous=False)
        return got
    finally:
        consumer.close()


# -- aiokafka -----------------------------------------------------------------------------


def aiokafka_consume_and_commit(bootstrap: str, group: str, topic: str, count: int) -> list:
    async def run() -> list[Record]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        try:
            got: list[Record] = []
            async with asyncio.timeout(DEADLINE_S):
                while len(got) < count:
                    batches = await consumer.getmany(timeout_ms=200)
                    got += [(m.partition, m.offset, m.value) for ms in batches.values() for m in ms]
            await consumer.commit()
            return got
        finally:
            await consumer.stop()

    return asyncio.run(run())


# -- a group of two different clients ------------------------------------------------------


@dataclass
class Shared:
    """What the members of a mixed group report to the test thread."""

    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    assignments: dict[str, frozenset[int]] = field(default_factory=dict)
    consumed: dict[str, list[Record]] = field(default_factory=dict)

    def report(self, name: str, assignment: frozenset[int], records: list[Record]) -> None:
        with self.lock:
            self.assignments[name] = assignment
            self.consumed.setdefault(name, []).extend(records)

    def total(self) -> int:
        with self.lock:
            return sum(len(r) for r in self.consumed.values())


def run_member(name: str, shared: Shared, bootstrap: str, group: str, topic: str) -> None:
    """Poll as member ``name`` until told to stop, reporting assignment and records."""
    deadline = time.monotonic() + 2 * DEADLINE_S
    if name == "kafka-python":
        consumer = kafka_python_consumer(bootstrap, group, topic)
        poll = lambda: kafka_python_poll(consumer)  # noqa: E731
        assigned = lambda: frozenset(tp.partition for tp in consumer.assignment())  # noqa: E731
    else:
        consumer = confluent_consumer(bootstrap, group, topic)
        poll = lambda: confluent_poll(consumer)  # noqa: E731
        assigned = lambda: frozenset(tp.partition for tp in consumer.assignment())  # noqa: E731
    try:
        while not shared.stop.is_set():
            assert time.monotonic() < deadline, f"{name} was never told to stop"
            records = poll()
            shared.report(name, assigned(), records)
    finally:
        consumer.close()
