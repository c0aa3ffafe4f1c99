"""The same few operations in confluent-kafka and in kafka-python.

Each client gets one adapter with the same methods (create_topic, metadata,
produce, consume, offsets_for_times), so a test can produce with one and read
back with the other. Consumers are assign-based: trilog serves no group APIs
yet. Everything has a deadline; nothing waits for a condition by sleeping.
"""

from __future__ import annotations

import importlib
import time
import warnings
from dataclasses import dataclass
from typing import Any

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

DEADLINE_S = 60.0
POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class Message:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Stored:
    """A message at its place in the log: acknowledged by a producer, or consumed."""

    partition: int
    offset: int
    message: Message


@dataclass(frozen=True, slots=True)
class ClusterView:
    brokers: dict[int, tuple[str, int]]
    topics: dict[str, int]  # name -> partition count


def make_messages(count: int, source: str, base_timestamp_ms: int) -> list[Message]:
    """Keyed messages with headers (one key repeated, as Kafka allows) and strictly
    increasing timestamps; every 1000th is a tombstone (null value)."""
    out = []
    for i in range(count):
        headers = [("index", str(i).encode()), ("source", source.encode())]
        if i % 5 == 0:
            headers += [("dup", b"first"), ("dup", b"second")]
        value = None if i % 1000 == 999 else f"{source}-value-{i}-".encode() * (1 + i % 7)
        out.append(Message(f"key-{i % 50}".encode(), value, tuple(headers), base_timestamp_ms + i))
    return out


def _import_kafka_python() -> Any:
    # kafka-python 3.0 builds its protocol classes at import time with
    # importlib.resources.read_text/open_text, deprecated since Python 3.11; the
    # project turns warnings into errors, so those two (and only those) are
    # silenced for the import.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
        kafka = importlib.import_module("kafka")
        importlib.import_module("kafka.admin")
    return kafka


class Confluent:
    """confluent-kafka (librdkafka)."""

    name = "confluent"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def _admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create_topic(self, topic: str, partitions: int) -> None:
        admin = self._admin()  # must outlive the future: destroying it fails the request
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=DEADLINE_S)

    def metadata(self) -> ClusterView:
        md = self._admin().list_topics(timeout=DEADLINE_S)
        return ClusterView(
            {b.id: (b.host, b.port) for b in md.brokers.values()},
            {name: len(t.partitions) for name, t in md.topics.items()},
        )

    def produce(self, topic: str, messages: list[Message]) -> list[Stored]:
        """Idempotent, acks=all; returns what was acknowledged, in send order."""
        producer = confluent_kafka.Producer(
            {"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all"}
        )
        return self.produce_with(producer, topic, messages)

    @staticmethod
    def produce_with(producer: Any, topic: str, messages: list[Message]) -> list[Stored]:
        acked: list[Stored | None] = [None] * len(messages)
        errors = []

        def delivered(i: int, err: Any, msg: Any) -> None:
            if err is not None:
                errors.append((i, err))
            else:
                acked[i] = Stored(msg.partition(), msg.offset(), messages[i])

        for i, m in enumerate(messages):
            producer.produce(
                topic,
                key=m.key,
                value=m.value,
                headers=list(m.headers),
                timestamp=m.timestamp_ms,
                on_delivery=lambda err, msg, i=i: delivered(i, err, msg),
            )
            producer.poll(0)
        left = producer.flush(DEADLINE_S)
        assert left == 0 and not errors, f"{left} undelivered, errors {errors[:5]}"
        assert all(a is not None for a in acked)
        return acked

    def _consumer(self) -> Any:
        return confluent_kafka.Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "realclients-unused",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Stored]:
        """``count`` messages from partition -> start offset, in arrival order."""
        consumer = self._consumer()
        try:
            consumer.assign(
                [confluent_kafka.TopicPartition(topic, p, o) for p, o in starts.items()]
            )
            got: list[Stored] = []
            deadline = time.monotonic() + DEADLINE_S
            while len(got) < count and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=1000, timeout=POLL_S):
                    assert msg.error() is None, msg.error()
                    got.append(self._stored(msg))
            return got
        finally:
            consumer.close()

    @staticmethod
    def _stored(msg: Any) -> Stored:
        kind, timestamp = msg.timestamp()
        assert kind == confluent_kafka.TIMESTAMP_CREATE_TIME, kind
        headers = tuple(msg.headers() or ())
        return Stored(
            msg.partition(), msg.offset(), Message(msg.key(), msg.value(), headers, timestamp)
        )

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        """partition -> first offset with timestamp >= the given one (None past the end)."""
        consumer = self._consumer()
        try:
            query = [confluent_kafka.TopicPartition(topic, p, t) for p, t in times.items()]
            found = consumer.offsets_for_times(query, timeout=DEADLINE_S)
        finally:
            consumer.close()
        out = {}
        for tp in found:
            assert tp.error is None, tp.error
            out[tp.partition] = None if tp.offset == confluent_kafka.OFFSET_END else tp.offset
        return out


class KafkaPython:
    """kafka-python."""

    name = "kafka-python"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.kafka = _import_kafka_python()

    def create_topic(self, topic: str, partitions: int) -> None:
        admin = self.kafka.admin.KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([self.kafka.admin.NewTopic(topic, partitions, 1)])
        finally:
            admin.close()

    def metadata(self) -> ClusterView:
        admin = self.kafka.admin.KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            cluster = admin.describe_cluster()
            topics = admin.describe_topics()
        finally:
            admin.close()
        return ClusterView(
            {b["broker_id"]: (b["host"], b["port"]) for b in cluster["brokers"]},
            {t["name"]: len(t["partitions"]) for t in topics},
        )

    def produce(self, topic: str, messages: list[Message]) -> list[Stored]:
        """acks='all'; returns what was acknowledged, in send order."""
        producer = self.kafka.KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            futures = [
                producer.send(
                    topic,
                    key=m.key,
                    value=m.value,
                    headers=list(m.headers),
                    timestamp_ms=m.timestamp_ms,
                )
                for m in messages
            ]
            producer.flush(timeout=DEADLINE_S)
            acked = []
            for future, m in zip(futures, messages, strict=True):
                meta = future.get(timeout=DEADLINE_S)
                acked.append(Stored(meta.partition, meta.offset, m))
            return acked
        finally:
            producer.close(timeout=DEADLINE_S)

    def _consumer(self) -> Any:
        return self.kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )

    def consume(self, topic: str, starts: dict[int, int], count: int) -> list[Stored]:
        """``count`` messages from partition -> start offset, in arrival order."""
        TopicPartition = self.kafka.TopicPartition
        consumer = self._consumer()
        try:
            consumer.assign([TopicPartition(topic, p) for p in starts])
            for p, offset in starts.items():
                consumer.seek(TopicPartition(topic, p), offset)
            got: list[Stored] = []
            deadline = time.monotonic() + DEADLINE_S
            while len(got) < count and time.monotonic() < deadline:
                batches = consumer.poll(timeout_ms=int(POLL_S * 1000), max_records=5000)
                for records in batches.values():
                    got += [self._stored(r) for r in records]
            return got
        finally:
            consumer.close()

    @staticmethod
    def _stored(r: Any) -> Stored:
        assert r.timestamp_type == 0, r.timestamp_type  # CreateTime
        headers = tuple((k, v) for k, v in r.headers)
        return Stored(r.partition, r.offset, Message(r.key, r.value, headers, r.timestamp))

    def offsets_for_times(self, topic: str, times: dict[int, int]) -> dict[int, int | None]:
        """partition -> first offset with timestamp >= the given one (None past the end)."""
        TopicPartition = self.kafka.TopicPartition
        consumer = self._consumer()
        try:
            query = {TopicPartition(topic, p): t for p, t in times.items()}
            found = consumer.offsets_for_times(query, timeout_ms=int(DEADLINE_S * 1000))
        finally:
            consumer.close()
        return {tp.partition: None if o is None else o.offset for tp, o in found.items()}


CLIENTS = {"confluent": Confluent, "kafka-python": KafkaPython}
