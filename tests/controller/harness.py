"""A controller and its committed metadata log, driven on a virtual clock.

Every result is committed at once: its records go through the JSON codec and
are replayed into a separate committed image at the result's offset, and the
harness asserts that image equals the controller's working image (replay
determinism, checked after every command). Brokers heartbeat on demand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from broker.controller.controller import (
    ControllerConfig,
    ControllerResult,
    ElectionType,
    QuorumController,
    ToBroker,
)
from broker.controller.image import MetadataImage, PartitionState
from broker.controller.records import Endpoint, decode_record, encode_record
from broker.controller.topics import NewTopic


@dataclass
class Harness:
    config: ControllerConfig = field(default_factory=ControllerConfig)
    now_ms: int = 0
    seed: int = 7

    def __post_init__(self) -> None:
        self.controller = QuorumController(self.config, random.Random(self.seed))
        self.committed = MetadataImage()
        self.log: list[ControllerResult[Any]] = []
        self.epochs: dict[int, int] = {}
        self.incarnations: dict[int, int] = {}

    # -- the metadata log -------------------------------------------------------------

    def commit(self, result: ControllerResult[Any]) -> Any:
        if result.records:
            assert result.offset == self.committed.metadata_offset + 1
            for record in result.records:
                self.committed.replay(decode_record(encode_record(record)), result.offset)
            self.log.append(result)
        assert self.committed == self.controller.image
        return result.response

    # -- brokers ----------------------------------------------------------------------

    def register(self, broker_id: int, *, new_incarnation: bool = False) -> int:
        if new_incarnation or broker_id not in self.incarnations:
            self.incarnations[broker_id] = self.incarnations.get(broker_id, 0) + 1
        incarnation = f"broker-{broker_id}-{self.incarnations[broker_id]}"
        listeners = (Endpoint("PLAINTEXT", "localhost", 9090 + broker_id),)
        response = self.commit(
            self.controller.register_broker(broker_id, incarnation, listeners, None, self.now_ms)
        )
        self.epochs[broker_id] = response.broker_epoch
        return response.broker_epoch

    def heartbeat(
        self, broker_id: int, *, want_fence: bool = False, want_shutdown: bool = False
    ) -> Any:
        result = self.controller.heartbeat(
            broker_id,
            self.epochs[broker_id],
            self.committed.metadata_offset,
            want_fence,
            want_shutdown,
            self.now_ms,
        )
        return self.commit(result)

    def start(self, *broker_ids: int) -> None:
        """Register and unfence each broker."""
        for b in broker_ids:
            self.register(b)
            assert not self.heartbeat(b).is_fenced

    def advance(self, ms: int, *, silent: tuple[int, ...] = ()) -> list[Any]:
        """Move the clock in heartbeat-interval steps; brokers not `silent` heartbeat."""
        reports = []
        end = self.now_ms + ms
        while self.now_ms < end:
            self.now_ms = min(end, self.now_ms + self.config.broker_heartbeat_interval_ms)
            for b in sorted(self.controller.image.brokers):
                if b not in silent:
                    self.heartbeat(b)
            reports.append(self.commit(self.controller.tick(self.now_ms)))
        return reports

    # -- topics and partitions --------------------------------------------------------

    def create(self, name: str, partitions: int = 1, factor: int = 3, **assign: Any) -> None:
        assignments = assign.get("assignments", {})
        topic = NewTopic(
            name,
            -1 if assignments else partitions,
            -1 if assignments else factor,
            assignments,
            assign.get("configs", {}),
        )
        [result] = self.commit(self.controller.create_topics([topic]))
        assert result.error.name == "NONE", result

    def state(self, topic: str, index: int = 0) -> PartitionState:
        return self.controller.image.topics[topic].partitions[index]

    def describe(self, topic: str, index: int = 0) -> str:
        s = self.state(topic, index)
        text = (
            f"leader={s.leader} epoch={s.leader_epoch} isr={list(s.isr)}"
            f" replicas={list(s.replicas)}"
        )
        if s.reassigning:
            text += f" adding={list(s.adding_replicas)} removing={list(s.removing_replicas)}"
        return text

    def alter_isr(self, topic: str, index: int, isr: tuple[int, ...], broker: int = -1) -> Any:
        s = self.state(topic, index)
        broker = s.leader if broker == -1 else broker
        return self.commit(
            self.controller.alter_partition(
                broker,
                self.epochs[broker],
                topic,
                index,
                s.leader_epoch,
                s.partition_epoch,
                isr,
            )
        )

    def elect(self, topic: str, index: int, kind: ElectionType | ToBroker) -> Any:
        [result] = self.commit(self.controller.elect_leaders([(topic, index)], kind, self.now_ms))
        return result
