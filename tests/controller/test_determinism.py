"""Replay determinism: for random command sequences, replaying the records the
controller produced into a fresh image gives exactly its working image.

A seeded loop drives one controller with every command (valid, stale and
nonsensical), committing results late or never (a reset drops the uncommitted
tail, as a lost leadership does). After every step it checks the invariants
the rest of the system relies on; at the end a fresh replay of the committed
log must equal the committed image, and the working image after a final commit.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from broker.controller.controller import (
    ControllerConfig,
    ControllerResult,
    ElectionType,
    QuorumController,
    ToBroker,
)
from broker.controller.image import MetadataImage
from broker.controller.records import NO_LEADER, Endpoint, decode_record, encode_record
from broker.controller.topics import NewTopic

BROKERS = range(1, 6)
TOPICS = ("a", "b", "c")
STEPS = 200


class Driver:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        config = ControllerConfig(
            unclean_leader_election_enable=self.rng.random() < 0.3,
            leader_imbalance_check_interval_ms=5000,
            elections_per_call_max=self.rng.choice([1, 3, 1000]),
        )
        self.controller = QuorumController(config, random.Random(seed))
        self.committed = MetadataImage()
        self.log: list[ControllerResult[Any]] = []  # committed results, in order
        self.pending: list[ControllerResult[Any]] = []  # issued, not yet committed
        self.now_ms = 0
        self.leaders_by_epoch: dict[tuple[str, int, int], int] = {}

    def step(self) -> None:
        command = self.rng.choice(
            [self.register, self.heartbeat, self.heartbeat, self.tick, self.topic_op,
             self.alter_partition, self.elect, self.reassign, self.unregister]
        )  # fmt: skip
        result = command()
        if result.records:
            self.pending.append(result)
        roll = self.rng.random()
        if roll < 0.6:
            self.commit_pending()
        elif roll < 0.65:
            self.pending.clear()
            self.controller.reset_to(
                self.committed, self.committed.metadata_offset + 1, self.now_ms
            )
        check_invariants(self.controller.image)
        self.check_single_leader_per_epoch()

    def commit_pending(self) -> None:
        for result in self.pending:
            assert result.offset == self.committed.metadata_offset + 1
            for record in result.records:
                self.committed.replay(decode_record(encode_record(record)), result.offset)
            self.log.append(result)
        self.pending.clear()

    def check_single_leader_per_epoch(self) -> None:
        """Committed state only: brokers never see records a reset dropped."""
        for name, topic in self.committed.topics.items():
            for index, state in topic.partitions.items():
                key = (topic.topic_id, index, state.leader_epoch)
                if state.leader != NO_LEADER:
                    first = self.leaders_by_epoch.setdefault(key, state.leader)
                    assert first == state.leader, f"{name}-{index}: two leaders in one epoch"

    # -- commands, with arguments right or wrong ---------------------------------------

    def broker(self) -> int:
        return self.rng.choice(BROKERS)

    def epoch_of(self, broker: int) -> int:
        reg = self.controller.image.brokers.get(broker)
        if reg is None or self.rng.random() < 0.1:
            return self.rng.randrange(-1, 50)
        return reg.epoch

    def register(self) -> ControllerResult[Any]:
        b = self.broker()
        incarnation = f"{b}-{self.rng.randrange(3)}"
        return self.controller.register_broker(
            b, incarnation, (Endpoint("PLAINTEXT", "h", 9000 + b),), None, self.now_ms
        )

    def heartbeat(self) -> ControllerResult[Any]:
        b = self.broker()
        offset = self.committed.metadata_offset - self.rng.choice([0, 0, 0, 1, 5])
        return self.controller.heartbeat(
            b,
            self.epoch_of(b),
            offset,
            self.rng.random() < 0.05,
            self.rng.random() < 0.05,
            self.now_ms,
        )

    def tick(self) -> ControllerResult[Any]:
        self.now_ms += self.rng.choice([100, 2000, 5000])
        return self.controller.tick(self.now_ms)

    def topic_op(self) -> ControllerResult[Any]:
        name = self.rng.choice(TOPICS)
        roll = self.rng.random()
        if roll < 0.5:
            topic = NewTopic(name, self.rng.randrange(1, 4), self.rng.randrange(1, 4), {}, {})
            return self.controller.create_topics([topic])
        if roll < 0.8:
            return self.controller.create_partitions(name, self.rng.randrange(1, 6))
        return self.controller.delete_topics([name])

    def some_partition(self) -> tuple[str, int]:
        name = self.rng.choice(TOPICS)
        topic = self.controller.image.topics.get(name)
        count = len(topic.partitions) if topic else 1
        return name, self.rng.randrange(count + 1)

    def alter_partition(self) -> ControllerResult[Any]:
        name, index = self.some_partition()
        topic = self.controller.image.topics.get(name)
        state = topic.partitions.get(index) if topic else None
        if state is None:
            return self.controller.alter_partition(1, 0, name, index, 0, 0, (1,))
        leader = state.leader if self.rng.random() < 0.9 else self.broker()
        members = [b for b in state.replicas if b == leader or self.rng.random() < 0.6]
        skew = self.rng.choice([0, 0, 0, -1, 1])
        return self.controller.alter_partition(
            leader,
            self.epoch_of(leader),
            name,
            index,
            state.leader_epoch + (skew if self.rng.random() < 0.5 else 0),
            state.partition_epoch + (skew if self.rng.random() < 0.5 else 0),
            tuple(members),
        )

    def elect(self) -> ControllerResult[Any]:
        kind: ElectionType | ToBroker = self.rng.choice(
            [ElectionType.PREFERRED, ElectionType.UNCLEAN, ToBroker(self.broker())]
        )
        targets = None if self.rng.random() < 0.3 else [self.some_partition()]
        return self.controller.elect_leaders(targets, kind, self.now_ms)

    def reassign(self) -> ControllerResult[Any]:
        name, index = self.some_partition()
        if self.rng.random() < 0.3:
            return self.controller.alter_partition_reassignments(name, index, None)
        target = tuple(self.rng.sample(list(BROKERS), self.rng.randrange(1, 4)))
        return self.controller.alter_partition_reassignments(name, index, target)

    def unregister(self) -> ControllerResult[Any]:
        if self.rng.random() < 0.3:
            return self.controller.unregister_broker(self.broker())
        return self.tick()


def check_invariants(image: MetadataImage) -> None:
    """Between commands: leaders are usable brokers, and so is every ISR member of a led
    partition (a fenced or shutting-down broker leaves every ISR it can)."""
    for name, topic in image.topics.items():
        for index, state in topic.partitions.items():
            if state.leader == NO_LEADER:
                continue
            assert image.is_usable(state.leader), f"{name}-{index}: leader {state.leader}"
            unusable = [b for b in state.isr if not image.is_usable(b)]
            assert not unusable, f"{name}-{index}: ISR {state.isr} has {unusable}"


def replay_log(log: list[ControllerResult[Any]]) -> MetadataImage:
    image = MetadataImage()
    for result in log:
        for record in result.records:
            image.replay(decode_record(encode_record(record)), result.offset)
    return image


@pytest.mark.parametrize("seed", range(200))
def test_replaying_the_records_rebuilds_the_working_image(seed: int) -> None:
    driver = Driver(seed)
    for _ in range(STEPS):
        driver.step()
    driver.commit_pending()
    assert replay_log(driver.log) == driver.committed
    assert driver.committed == driver.controller.image


def test_the_random_driver_reaches_the_interesting_states() -> None:
    """Guard against a driver that only ever hits refusals."""
    seen = {"fenced": 0, "offline": 0, "reassigning": 0, "led": 0}
    for seed in range(20):
        driver = Driver(seed)
        for _ in range(STEPS):
            driver.step()
            image = driver.controller.image
            seen["fenced"] += any(r.fenced for r in image.brokers.values())
            for topic in image.topics.values():
                for state in topic.partitions.values():
                    seen["offline"] += state.leader == NO_LEADER
                    seen["reassigning"] += state.reassigning
                    seen["led"] += state.leader != NO_LEADER
    assert all(seen.values()), seen
