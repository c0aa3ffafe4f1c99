"""The metadata image: brokers, topics, partitions and topic configs, built only by replay.

Every node (the active controller included) holds one, changed only by
replay(record, offset) in metadata-log order, so two images that replayed the
same records are equal. Replay asserts the partition invariants: epochs never
go backwards, the leader is in the ISR and the replicas, the ISR is a subset
of the replicas. A broken invariant is our bug, and crashes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from broker.controller.records import (
    NO_CHANGE,
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
)


@dataclass(slots=True)
class PartitionState:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def reassigning(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)


@dataclass(slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: dict[int, PartitionState] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class BrokerRegistration:
    broker_id: int
    incarnation_id: str
    epoch: int
    listeners: tuple[Endpoint, ...]
    rack: str | None
    fenced: bool
    in_controlled_shutdown: bool
    registered_at_offset: int
    """Metadata offset of the RegisterBrokerRecord: the broker is caught up past it."""

    @property
    def usable(self) -> bool:
        """May lead, join an ISR, or receive new replicas."""
        return not self.fenced and not self.in_controlled_shutdown


class MetadataImage:
    """Cluster metadata as of the last replayed record; changed only by replay()."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicImage] = {}
        self._names_by_id: dict[str, str] = {}
        self.brokers: dict[int, BrokerRegistration] = {}
        self.applied_records = 0
        self.metadata_offset = -1
        self.next_producer_id = 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetadataImage):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def _state(self) -> tuple:
        return (
            self.topics,
            self._names_by_id,
            self.brokers,
            self.applied_records,
            self.metadata_offset,
            self.next_producer_id,
        )

    def copy(self) -> MetadataImage:
        return copy.deepcopy(self)

    def topic(self, name: str) -> TopicImage | None:
        return self.topics.get(name)

    def topic_by_id(self, topic_id: str) -> TopicImage | None:
        name = self._names_by_id.get(topic_id)
        return None if name is None else self.topics[name]

    def usable_brokers(self) -> list[int]:
        """Registered brokers that are neither fenced nor shutting down, in id order."""
        return sorted(b for b, reg in self.brokers.items() if reg.usable)

    def is_usable(self, broker_id: int) -> bool:
        reg = self.brokers.get(broker_id)
        return reg is not None and reg.usable

    def replay(self, record: MetadataRecord, offset: int | None = None) -> None:
        """Apply one record found at metadata log `offset` (default: one offset per record)."""
        offset = self.applied_records if offset is None else offset
        assert offset >= self.metadata_offset, f"offset {offset} < {self.metadata_offset}"
        self.applied_records += 1
        self.metadata_offset = offset
        match record:
            case TopicRecord(name=name, topic_id=topic_id):
                assert name not in self.topics, f"topic {name} created twice"
                assert topic_id not in self._names_by_id, f"topic id {topic_id} reused"
                self.topics[name] = TopicImage(name, topic_id)
                self._names_by_id[topic_id] = name
            case PartitionRecord():
                self._replay_partition(record)
            case PartitionChangeRecord():
                self._replay_partition_change(record)
            case ConfigRecord(topic=name, name=key, value=value):
                configs = self.topics[name].configs
                if value is None:
                    configs.pop(key, None)
                else:
                    configs[key] = value
            case RemoveTopicRecord(topic_id=topic_id):
                name = self._names_by_id.pop(topic_id)
                del self.topics[name]
            case ProducerIdsRecord(next_producer_id=next_id):
                assert next_id > self.next_producer_id, "producer ids went backwards"
                self.next_producer_id = next_id
            case RegisterBrokerRecord() | BrokerRegistrationChangeRecord():
                self._replay_broker(record, offset)
            case UnregisterBrokerRecord(broker_id=broker_id, broker_epoch=epoch):
                assert self.brokers[broker_id].epoch == epoch, f"unregister {broker_id}: stale"
                del self.brokers[broker_id]
            case _:
                raise AssertionError(f"unknown metadata record {record!r}")

    def _replay_partition(self, record: PartitionRecord) -> None:
        topic = self.topics[self._names_by_id[record.topic_id]]
        previous = topic.partitions.get(record.partition)
        assert previous is None or record.leader_epoch >= previous.leader_epoch, (
            f"leader epoch of {topic.name}-{record.partition} went backwards"
        )
        state = PartitionState(
            record.replicas,
            record.isr,
            record.leader,
            record.leader_epoch,
            record.partition_epoch,
        )
        check_partition(state, f"{topic.name}-{record.partition}")
        topic.partitions[record.partition] = state

    def _replay_partition_change(self, record: PartitionChangeRecord) -> None:
        topic = self.topics[self._names_by_id[record.topic_id]]
        old = topic.partitions[record.partition]
        name = f"{topic.name}-{record.partition}"
        assert record.partition_epoch > old.partition_epoch, f"{name}: partition epoch stale"
        assert record.leader_epoch >= old.leader_epoch, f"{name}: leader epoch went backwards"
        leader = old.leader if record.leader == NO_CHANGE else record.leader
        assert leader == old.leader or record.leader_epoch > old.leader_epoch, (
            f"{name}: leader changed {old.leader} -> {leader} without a new leader epoch"
        )
        new = PartitionState(
            old.replicas if record.replicas is None else record.replicas,
            old.isr if record.isr is None else record.isr,
            leader,
            record.leader_epoch,
            record.partition_epoch,
            old.adding_replicas if record.adding_replicas is None else record.adding_replicas,
            old.removing_replicas if record.removing_replicas is None else record.removing_replicas,
        )
        check_partition(new, name)
        topic.partitions[record.partition] = new

    def _replay_broker(
        self, record: RegisterBrokerRecord | BrokerRegistrationChangeRecord, offset: int
    ) -> None:
        if isinstance(record, RegisterBrokerRecord):
            self.brokers[record.broker_id] = BrokerRegistration(
                record.broker_id,
                record.incarnation_id,
                record.broker_epoch,
                record.listeners,
                record.rack,
                record.fenced,
                record.in_controlled_shutdown,
                offset,
            )
            return
        reg = self.brokers[record.broker_id]
        assert reg.epoch == record.broker_epoch, f"broker {reg.broker_id}: change for old epoch"
        if record.fenced is not None:
            reg.fenced = record.fenced
        if record.in_controlled_shutdown is not None:
            reg.in_controlled_shutdown = record.in_controlled_shutdown


def check_partition(state: PartitionState, name: str) -> None:
    """The invariants every partition state satisfies; AssertionError names the broken one."""
    replicas, isr = set(state.replicas), set(state.isr)
    assert len(replicas) == len(state.replicas) > 0, f"{name}: bad replicas {state.replicas}"
    assert len(isr) == len(state.isr) > 0, f"{name}: bad ISR {state.isr}"
    assert isr <= replicas, f"{name}: ISR {state.isr} not within replicas {state.replicas}"
    assert state.leader == NO_LEADER or state.leader in isr, (
        f"{name}: leader {state.leader} not in ISR {state.isr}"
    )
    assert state.leader == NO_LEADER or state.leader in replicas, (
        f"{name}: leader {state.leader} not a replica"
    )
    assert set(state.adding_replicas) <= replicas and set(state.removing_replicas) <= replicas, (
        f"{name}: adding/removing outside replicas"
    )
    assert not set(state.adding_replicas) & set(state.removing_replicas), (
        f"{name}: a replica both added and removed"
    )
