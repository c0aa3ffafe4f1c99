"""Metadata records round-trip through JSON; replay keeps the partition invariants."""

from __future__ import annotations

import pytest

from broker.controller.image import MetadataImage
from broker.controller.records import (
    NO_LEADER,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    Endpoint,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnregisterBrokerRecord,
    decode_record,
    encode_record,
)

TID = "00000000-0000-4000-8000-000000000001"

EVERY_RECORD: list[MetadataRecord] = [
    TopicRecord("t", TID),
    PartitionRecord(TID, 0, (1, 2, 3), (1, 2), 1, 4, 7),
    PartitionChangeRecord(TID, 0, 5, 8, leader=2, isr=(2,), adding_replicas=(4,)),
    PartitionChangeRecord(TID, 0, 5, 9),
    ConfigRecord("t", "retention.ms", None),
    RemoveTopicRecord(TID),
    ProducerIdsRecord(1000),
    RegisterBrokerRecord(1, "inc", 12, (Endpoint("PLAINTEXT", "h", 9092),), "r1"),
    BrokerRegistrationChangeRecord(1, 12, fenced=False),
    BrokerRegistrationChangeRecord(1, 12, in_controlled_shutdown=True),
    UnregisterBrokerRecord(1, 12),
]


@pytest.mark.parametrize("record", EVERY_RECORD, ids=lambda r: type(r).__name__)
def test_round_trip(record: MetadataRecord) -> None:
    assert decode_record(encode_record(record)) == record


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type":"NoSuchRecord"}',
        b'{"name":"t","topic_id":"x"}',
        b'{"type":"TopicRecord","name":"t"}',
        b'{"type":"TopicRecord","name":"t","topic_id":"x","extra":1}',
        b"[1,2]",
        b"not json",
    ],
)
def test_unknown_or_malformed_records_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_record(raw)


def image_with_partition(**fields: object) -> MetadataImage:
    image = MetadataImage()
    image.replay(TopicRecord("t", TID))
    state = {"replicas": (1, 2, 3), "isr": (1, 2, 3), "leader": 1} | fields
    image.replay(PartitionRecord(TID, 0, **state))  # type: ignore[arg-type]
    return image


def test_partition_change_applies_only_what_it_names() -> None:
    image = image_with_partition()
    image.replay(PartitionChangeRecord(TID, 0, 1, 1, leader=2, isr=(2, 3)), offset=5)
    state = image.topics["t"].partitions[0]
    assert (state.leader, state.isr, state.replicas) == (2, (2, 3), (1, 2, 3))
    assert (state.leader_epoch, state.partition_epoch, image.metadata_offset) == (1, 1, 5)


@pytest.mark.parametrize(
    "change",
    [
        PartitionChangeRecord(TID, 0, 0, 0, isr=(1, 2)),  # partition epoch did not grow
        PartitionChangeRecord(TID, 0, 0, 1, leader=2),  # new leader, same leader epoch
        PartitionChangeRecord(TID, 0, 1, 1, leader=4),  # leader not a replica
        PartitionChangeRecord(TID, 0, 0, 1, isr=(2, 3)),  # leader left the ISR
        PartitionChangeRecord(TID, 0, 0, 1, isr=(1, 4)),  # ISR outside the replicas
        PartitionChangeRecord(TID, 0, 0, 1, isr=()),  # empty ISR
        PartitionChangeRecord(TID, 0, 0, 1, adding_replicas=(5,)),
    ],
)
def test_replay_crashes_on_a_broken_invariant(change: PartitionChangeRecord) -> None:
    image = image_with_partition()
    with pytest.raises(AssertionError):
        image.replay(change)


def test_leader_epoch_never_goes_backwards() -> None:
    image = image_with_partition(leader_epoch=3)
    with pytest.raises(AssertionError):
        image.replay(PartitionChangeRecord(TID, 0, 2, 1))


def test_offsets_never_go_backwards() -> None:
    image = MetadataImage()
    image.replay(ProducerIdsRecord(10), offset=7)
    with pytest.raises(AssertionError):
        image.replay(ProducerIdsRecord(20), offset=6)


def test_offline_partition_keeps_its_last_isr_member() -> None:
    image = image_with_partition()
    image.replay(PartitionChangeRecord(TID, 0, 1, 1, leader=NO_LEADER, isr=(1,)))
    assert image.topics["t"].partitions[0].leader == NO_LEADER


def test_broker_lifecycle_replays() -> None:
    image = MetadataImage()
    endpoints = (Endpoint("PLAINTEXT", "h", 9092),)
    image.replay(RegisterBrokerRecord(1, "a", 3, endpoints, "rack-a"), offset=3)
    reg = image.brokers[1]
    assert (reg.epoch, reg.fenced, reg.rack, reg.registered_at_offset) == (3, True, "rack-a", 3)
    image.replay(BrokerRegistrationChangeRecord(1, 3, fenced=False), offset=4)
    assert image.usable_brokers() == [1]
    image.replay(BrokerRegistrationChangeRecord(1, 3, in_controlled_shutdown=True), offset=5)
    assert image.usable_brokers() == [] and not image.brokers[1].fenced
    with pytest.raises(AssertionError):
        image.replay(BrokerRegistrationChangeRecord(1, 2, fenced=True), offset=6)
    image.replay(UnregisterBrokerRecord(1, 3), offset=6)
    assert image.brokers == {}


def test_images_compare_by_content() -> None:
    a, b = image_with_partition(), image_with_partition()
    assert a == b
    copy = a.copy()
    copy.replay(PartitionChangeRecord(TID, 0, 0, 1, isr=(1, 2)))
    assert copy != a and a == b
