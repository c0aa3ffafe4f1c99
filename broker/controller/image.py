"""The metadata image: topics, partitions and topic configs, built only by replay."""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.controller.records import (
    ConfigRecord,
    MetadataRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RemoveTopicRecord,
    TopicRecord,
)


@dataclass(slots=True)
class PartitionState:
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int


@dataclass(slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: dict[int, PartitionState] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)


class MetadataImage:
    """Cluster metadata as of the last replayed record; changed only by replay()."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicImage] = {}
        self._names_by_id: dict[str, str] = {}
        self.applied_records = 0
        self.next_producer_id = 0

    def topic(self, name: str) -> TopicImage | None:
        return self.topics.get(name)

    def replay(self, record: MetadataRecord) -> None:
        self.applied_records += 1
        match record:
            case TopicRecord(name=name, topic_id=topic_id):
                assert name not in self.topics, f"topic {name} created twice"
                self.topics[name] = TopicImage(name, topic_id)
                self._names_by_id[topic_id] = name
            case PartitionRecord():
                topic = self.topics[self._names_by_id[record.topic_id]]
                previous = topic.partitions.get(record.partition)
                assert previous is None or record.leader_epoch >= previous.leader_epoch, (
                    f"leader epoch of {topic.name}-{record.partition} went backwards"
                )
                topic.partitions[record.partition] = PartitionState(
                    record.replicas,
                    record.isr,
                    record.leader,
                    record.leader_epoch,
                    record.partition_epoch,
                )
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
            case _:
                raise AssertionError(f"unknown metadata record {record!r}")
