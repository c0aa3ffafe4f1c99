"""What survives a broker restart, clean (SIGTERM) or not (SIGKILL), seen
through real clients: every acknowledged message, at the same offset, and
offsets that continue densely afterwards; a tail of garbage after a crash is
cut back to the last whole batch."""

from __future__ import annotations

import random
import re
import time

import confluent_kafka
import pytest

from tests.realclients.checks import (
    by_partition,
    check_acknowledged,
    check_keys_stick,
    check_read_back,
)
from tests.realclients.clients import Confluent, KafkaPython, Stored, make_messages

pytestmark = pytest.mark.clients

PARTITIONS = 3
CLEAN_STOP_LINE = "logs flushed, checkpoints written"


def read_all(client: Confluent | KafkaPython, topic: str, acked: list[Stored]) -> None:
    consumed = client.consume(topic, dict.fromkeys(range(PARTITIONS), 0), len(acked))
    check_read_back(consumed, acked)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_acknowledged_messages_survive_restart_and_offsets_continue(broker, how):
    topic = "durable"
    confluent, kafka_python = Confluent(broker.bootstrap), KafkaPython(broker.bootstrap)
    confluent.create_topic(topic, PARTITIONS)
    base_ms = int(time.time() * 1000) - 3_600_000
    # One idempotent producer session spans the restart: the broker must know
    # its sequence numbers afterwards (rebuilt from the log, as Kafka does).
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    before = Confluent.produce_with(producer, topic, make_messages(2000, "before", base_ms))

    broker.restart(how)

    assert (CLEAN_STOP_LINE in broker.earlier_runs_log()) == (how == "sigterm")
    read_all(kafka_python, topic, before)
    same_session = Confluent.produce_with(
        producer, topic, make_messages(1000, "same-session", base_ms + 2000)
    )
    other_client = kafka_python.produce(topic, make_messages(1000, "other", base_ms + 3000))
    everything = before + same_session + other_client
    check_acknowledged(everything, PARTITIONS)
    check_keys_stick(before + same_session)
    check_keys_stick(other_client)
    read_all(confluent, topic, everything)
    broker.assert_no_traceback()


def torn_copy_of_first_batch(segment: bytes) -> bytes:
    """All but the last byte of the segment's first batch: a write cut short."""
    batch_bytes = 12 + int.from_bytes(segment[8:12], "big")
    return segment[: batch_bytes - 1]


@pytest.mark.parametrize("garbage", ["random", "zeros", "torn-batch"])
def test_sigkill_with_garbage_tail_recovers_to_last_whole_batch(broker, garbage):
    topic = "torn"
    confluent, kafka_python = Confluent(broker.bootstrap), KafkaPython(broker.bootstrap)
    confluent.create_topic(topic, PARTITIONS)
    base_ms = int(time.time() * 1000) - 3_600_000
    before = confluent.produce(topic, make_messages(3000, "before", base_ms))
    broker.kill()

    segment = broker.segment_path(topic, 0)
    whole = segment.read_bytes()
    tail = {
        "random": random.Random(20240611).randbytes(1000),
        "zeros": bytes(4096),
        "torn-batch": torn_copy_of_first_batch(whole),
    }[garbage]
    segment.write_bytes(whole + tail)
    broker.start()

    in_partition_0 = len(by_partition(before)[0])
    recovery_line = re.compile(
        re.escape(f"{segment}: recovery truncated {len(tail)} bytes at position {len(whole)},")
        + rf" log continues at offset {in_partition_0}\b"
    )
    broker.wait_for_log(recovery_line.pattern)  # partitions open once metadata is replayed
    read_all(kafka_python, topic, before)
    after = kafka_python.produce(topic, make_messages(1000, "after", base_ms + 3000))
    check_acknowledged(before + after, PARTITIONS)
    read_all(confluent, topic, before + after)
    broker.assert_no_traceback()
