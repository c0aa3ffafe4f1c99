"""trilog's producer and consumer alongside confluent-kafka and kafka-python:
each reads what the others wrote, and a key lands on the same partition from all."""

import pytest
import trio
from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import Producer as ConfluentProducer
from confluent_kafka import TopicPartition as ConfluentTP

from consumer import Consumer
from producer import Producer, partition_for_key
from tests.clients_lib.conftest import cluster, import_kafka_python

pytestmark = pytest.mark.clients

PARTITIONS = 4
COUNT = 60


def messages(source):
    return [(b"key-%d" % (i % 13), b"%s-%d" % (source, i)) for i in range(COUNT)]


def confluent_read(bootstrap, topic):
    consumer = ConfluentConsumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    try:
        consumer.assign([ConfluentTP(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        got = []
        for _ in range(100):
            for message in consumer.consume(COUNT, timeout=0.5):
                assert message.error() is None, message.error()
                got.append((message.partition(), message.key(), message.value()))
            if len(got) >= COUNT:
                break
        return got
    finally:
        consumer.close()


def kafka_python_read(bootstrap, topic):
    kafka = import_kafka_python()
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    try:
        parts = [kafka.TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        got = []
        for _ in range(100):
            for tp, records in consumer.poll(timeout_ms=500).items():
                got.extend((tp.partition, r.key, r.value) for r in records)
            if len(got) >= COUNT:
                break
        return got
    finally:
        consumer.close()


def confluent_write(bootstrap, topic):
    producer = ConfluentProducer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for key, value in messages(b"confluent"):
        producer.produce(topic, value, key)
    assert producer.flush(10) == 0


def kafka_python_write(bootstrap, topic):
    kafka = import_kafka_python()
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for key, value in messages(b"kafka-python"):
            producer.send(topic, value=value, key=key)
        producer.flush(10)
    finally:
        producer.close()


def expected(source):
    return sorted((partition_for_key(k, PARTITIONS), k, v) for k, v in messages(source))


async def test_others_read_what_trilog_wrote(config):
    async with cluster(config, {"t": PARTITIONS}) as bootstrap:
        async with Producer(bootstrap, compression="lz4") as producer:
            for key, value in messages(b"trilog"):
                await producer.enqueue("t", value, key=key)
        for reader in (confluent_read, kafka_python_read):
            got = await trio.to_thread.run_sync(reader, bootstrap, "t")
            assert sorted(got) == expected(b"trilog"), reader.__name__


@pytest.mark.parametrize("writer", [confluent_write, kafka_python_write])
async def test_trilog_reads_what_others_wrote(config, writer):
    async with cluster(config, {"t": PARTITIONS}) as bootstrap:
        await trio.to_thread.run_sync(writer, bootstrap, "t")
        source = b"confluent" if writer is confluent_write else b"kafka-python"
        async with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
            consumer.assign([("t", p) for p in range(PARTITIONS)])
            got = []
            with trio.fail_after(10):
                while len(got) < COUNT:
                    record = await consumer.getone()
                    got.append((record.partition, record.key, record.value))
        assert sorted(got) == expected(source)
