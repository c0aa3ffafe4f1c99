"""A group mixing trilog's consumer with kafka-python's and confluent-kafka's: each
member's metadata is understood by whichever client leads, every partition goes to
exactly one member, and a member leaving hands its partitions to the others.

(Our producer feeding their consumers and theirs feeding ours, key for key on the
same partition, is tests/clients_lib/test_interop.py.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import trio
from confluent_kafka import Consumer as ConfluentConsumer

from consumer import Consumer
from tests.clients_groups.conftest import group_broker, produce_values, wait_until
from tests.clients_lib.conftest import import_kafka_python

pytestmark = pytest.mark.clients

PARTITIONS = 6
COUNT = 120
GROUP = "mixed"


@dataclass
class Seen:
    """What one member did, written by its thread and read by the test."""

    records: list = field(default_factory=list)
    assignment: frozenset = frozenset()
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def kafka_python_member(bootstrap: str, seen: Seen) -> None:
    kafka = import_kafka_python()
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    consumer = kafka.KafkaConsumer(
        "t",
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=200,
        partition_assignment_strategy=[RangePartitionAssignor, RoundRobinPartitionAssignor],
    )
    try:
        while not seen.stop.is_set():
            for tp, batch in consumer.poll(timeout_ms=100).items():
                seen.records.extend((tp.partition, m.offset, m.value) for m in batch)
            seen.assignment = frozenset(tp.partition for tp in consumer.assignment())
    except BaseException as exc:
        seen.error = exc
    finally:
        consumer.close()


def confluent_member(bootstrap: str, seen: Seen) -> None:
    consumer = ConfluentConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 200,
            "partition.assignment.strategy": "range,roundrobin",
        }
    )
    consumer.subscribe(["t"])
    try:
        while not seen.stop.is_set():
            for message in consumer.consume(100, timeout=0.1):
                if message.error() is None:
                    seen.records.append((message.partition(), message.offset(), message.value()))
            seen.assignment = frozenset(tp.partition for tp in consumer.assignment())
    except BaseException as exc:
        seen.error = exc
    finally:
        consumer.close()


async def our_member(bootstrap: str, seen: Seen, consumer: Consumer) -> None:
    while not seen.stop.is_set():
        with trio.move_on_after(0.1):
            record = await consumer.getone()
            seen.records.append((record.partition, record.offset, record.value))
        seen.assignment = frozenset(p for _, p in consumer.assignment())


def balanced(members: list[Seen]) -> bool:
    sets = [m.assignment for m in members]
    sizes = sorted(len(s) for s in sets)
    even = sizes[-1] - sizes[0] <= 1
    return even and sum(sizes) == PARTITIONS and frozenset().union(*sets) == set(range(PARTITIONS))


async def test_mixed_group_shares_partitions_and_rebalances(tmp_path):
    async with group_broker(tmp_path, {"t": PARTITIONS}) as bootstrap:
        await produce_values(bootstrap, "t", [b"a-%d" % i for i in range(COUNT)], PARTITIONS)
        ours, kp, cf = Seen(), Seen(), Seen()
        consumer = Consumer(
            bootstrap,
            group_id=GROUP,
            topics=["t"],
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=200,
        )
        try:
            async with consumer, trio.open_nursery() as nursery:
                nursery.start_soon(our_member, bootstrap, ours, consumer)
                nursery.start_soon(trio.to_thread.run_sync, kafka_python_member, bootstrap, kp)
                nursery.start_soon(trio.to_thread.run_sync, confluent_member, bootstrap, cf)
                everyone = [ours, kp, cf]
                await wait_until(lambda: balanced(everyone), "2 + 2 + 2", timeout_s=60)
                await _second_round(bootstrap, everyone)
                cf.stop.set()  # confluent leaves: the other two take over its partitions
                await wait_until(lambda: balanced([ours, kp]), "3 + 3", timeout_s=60)
                ours.stop.set()
                kp.stop.set()
        finally:
            for seen in (ours, kp, cf):
                seen.stop.set()
        assert kp.error is None and cf.error is None, (kp.error, cf.error)
        every = {v for m in (ours, kp, cf) for *_, v in m.records}
        assert every >= {b"a-%d" % i for i in range(COUNT)}


async def _second_round(bootstrap: str, everyone: list[Seen]) -> None:
    """With the group stable, new records each reach the member that owns their partition."""
    before = [len(m.records) for m in everyone]
    owners = [m.assignment for m in everyone]
    values = [b"b-%d" % i for i in range(COUNT)]
    await produce_values(bootstrap, "t", values, PARTITIONS)

    def later() -> list[list]:
        return [m.records[n:] for m, n in zip(everyone, before, strict=True)]

    await wait_until(
        lambda: {v for r in later() for *_, v in r} >= set(values), "second round", timeout_s=30
    )
    assert [m.assignment for m in everyone] == owners, "the group rebalanced mid-round"
    for owned, records in zip(owners, later(), strict=True):
        assert {p for p, _, value in records if value.startswith(b"b-")} <= owned
