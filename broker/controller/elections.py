"""Partition changes and leader elections (Kafka's PartitionChangeBuilder, as functions).

`build_change` takes a partition's state and what a command wants of it (a new
ISR, new replicas, an election) and returns the one PartitionChangeRecord that
gets there, or None when nothing would change. It completes a reassignment
whose new replicas have all joined the ISR, never empties the ISR (the last
member stays, so it can lead again cleanly when it returns), bumps the leader
epoch when the leader changes or replicas are dropped, and the partition epoch
on every change.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from broker.controller.image import MetadataImage, PartitionState, TopicImage
from broker.controller.records import NO_CHANGE, NO_LEADER, PartitionChangeRecord

log = logging.getLogger(__name__)


class Election(enum.Enum):
    ONLINE = "online"
    PREFERRED = "preferred"
    UNCLEAN = "unclean"


# Where each kind of election looks for a leader, in order; the first usable
# candidate wins. "isr" scans the ISR in replica order; "any" scans every replica
# (unclean: the ISR becomes just the new leader, and data may be lost).
ELECTION_ORDER: dict[Election, tuple[str, ...]] = {
    Election.ONLINE: ("current", "isr"),
    Election.PREFERRED: ("preferred", "current", "isr"),
    Election.UNCLEAN: ("current", "isr", "any"),
}


@dataclass(frozen=True, slots=True)
class Target:
    """What a command wants of one partition; None keeps the current value."""

    isr: tuple[int, ...] | None = None
    replicas: tuple[int, ...] | None = None
    adding: tuple[int, ...] | None = None
    removing: tuple[int, ...] | None = None
    election: Election = Election.ONLINE
    preferred: int | None = None
    """Candidate for a PREFERRED election; default the first replica."""


@dataclass(frozen=True, slots=True)
class Change:
    """The record (None: nothing changes), the resulting leader, and whether it was unclean."""

    record: PartitionChangeRecord | None
    leader: int
    unclean: bool = False


def elect_leader(
    election: Election,
    state: PartitionState,
    replicas: tuple[int, ...],
    isr: tuple[int, ...],
    usable: Callable[[int], bool],
    preferred: int,
) -> tuple[int, bool]:
    """(leader, unclean) for a partition heading to (replicas, isr); NO_LEADER if none."""
    for source in ELECTION_ORDER[election]:
        if source == "preferred" and preferred in isr and usable(preferred):
            return preferred, False
        if source == "current" and state.leader in isr and usable(state.leader):
            return state.leader, False
        if source == "isr":
            for broker in replicas:
                if broker in isr and usable(broker):
                    return broker, False
        if source == "any":
            for broker in replicas:
                if usable(broker):
                    return broker, True
    return NO_LEADER, False


def complete_reassignment(
    replicas: tuple[int, ...],
    isr: tuple[int, ...],
    adding: tuple[int, ...],
    removing: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Finish a reassignment once every target replica is in the ISR (KIP-455)."""
    if not adding and not removing:
        return replicas, isr, adding, removing
    new_isr = tuple(b for b in isr if b not in removing)
    new_replicas = tuple(b for b in replicas if b not in removing)
    if not new_isr or not set(new_replicas) <= set(new_isr):
        return replicas, isr, adding, removing
    return new_replicas, new_isr, (), ()


def build_change(
    topic_id: str,
    index: int,
    state: PartitionState,
    usable: Callable[[int], bool],
    target: Target,
) -> Change:
    replicas = state.replicas if target.replicas is None else target.replicas
    isr = state.isr if target.isr is None else target.isr
    adding = state.adding_replicas if target.adding is None else target.adding
    removing = state.removing_replicas if target.removing is None else target.removing
    replicas, isr, adding, removing = complete_reassignment(replicas, isr, adding, removing)
    preferred = replicas[0] if target.preferred is None else target.preferred
    leader, unclean = elect_leader(target.election, state, replicas, isr, usable, preferred)
    if unclean:
        isr = (leader,)
    if not isr:
        isr = state.isr  # without ELR the ISR never empties: its last member may lead again
    leader_moves = leader != state.leader or not set(state.replicas) <= set(replicas)
    unchanged = (
        not leader_moves
        and isr == state.isr
        and replicas == state.replicas
        and adding == state.adding_replicas
        and removing == state.removing_replicas
    )
    if unchanged:
        return Change(None, state.leader)
    record = PartitionChangeRecord(
        topic_id,
        index,
        leader_epoch=state.leader_epoch + (1 if leader_moves else 0),
        partition_epoch=state.partition_epoch + 1,
        leader=leader if leader_moves else NO_CHANGE,
        isr=None if isr == state.isr else isr,
        replicas=None if replicas == state.replicas else replicas,
        adding_replicas=None if adding == state.adding_replicas else adding,
        removing_replicas=None if removing == state.removing_replicas else removing,
    )
    return Change(record, leader, unclean)


def log_change(topic: str, index: int, state: PartitionState, change: Change, why: str) -> None:
    """One line per partition decision; unclean elections at WARNING (data may be lost)."""
    record = change.record
    assert record is not None
    level = logging.WARNING if change.unclean else logging.INFO
    log.log(
        level,
        "%s-%d %s: leader %d -> %d, leader epoch %d -> %d, partition epoch %d -> %d, isr %s%s",
        topic,
        index,
        why,
        state.leader,
        change.leader,
        state.leader_epoch,
        record.leader_epoch,
        state.partition_epoch,
        record.partition_epoch,
        list(record.isr if record.isr is not None else state.isr),
        " (UNCLEAN: data may be lost)" if change.unclean else "",
    )


def partitions(image: MetadataImage) -> Iterator[tuple[TopicImage, int, PartitionState]]:
    """Every partition, in a deterministic order (topic name, index)."""
    for name in sorted(image.topics):
        topic = image.topics[name]
        for index in sorted(topic.partitions):
            yield topic, index, topic.partitions[index]


def unclean_allowed(topic: TopicImage, cluster_default: bool) -> bool:
    """unclean.leader.election.enable: the topic's override, else the cluster's."""
    value = topic.configs.get("unclean.leader.election.enable")
    return cluster_default if value is None else value == "true"


@dataclass(frozen=True, slots=True)
class UncleanElection:
    """A leader chosen from outside the ISR: records the ISR had may be lost."""

    topic: str
    partition: int
    leader: int
    leader_epoch: int


@dataclass(slots=True)
class Changes:
    """Partition change records from one decision, and the unclean elections among them."""

    records: list[PartitionChangeRecord]
    unclean: list[UncleanElection]


def remove_from_isrs(
    image: MetadataImage, leaving: frozenset[int], unclean_default: bool, why: str
) -> Changes:
    """Take `leaving` brokers out of every ISR and leadership (fencing, shutdown)."""

    def usable(broker: int) -> bool:
        return broker not in leaving and image.is_usable(broker)

    out = Changes([], [])
    for topic, index, state in partitions(image):
        if not leaving & {*state.isr, state.leader}:
            continue
        election = Election.UNCLEAN if unclean_allowed(topic, unclean_default) else Election.ONLINE
        isr = tuple(b for b in state.isr if b not in leaving)
        _collect(
            out,
            topic,
            index,
            state,
            build_change(topic.topic_id, index, state, usable, Target(isr=isr, election=election)),
            why,
        )
    return out


def elect_offline(image: MetadataImage, unclean_default: bool, elections_max: int) -> Changes:
    """Elect a leader for partitions that have none, where one is now available."""
    out = Changes([], [])
    for topic, index, state in partitions(image):
        if state.leader != NO_LEADER:
            continue
        if len(out.records) >= elections_max:
            break
        election = Election.UNCLEAN if unclean_allowed(topic, unclean_default) else Election.ONLINE
        change = build_change(
            topic.topic_id, index, state, image.is_usable, Target(election=election)
        )
        _collect(out, topic, index, state, change, "offline partition elected")
    return out


def _collect(
    out: Changes, topic: TopicImage, index: int, state: PartitionState, change: Change, why: str
) -> None:
    if change.record is None:
        return
    log_change(topic.name, index, state, change, why)
    out.records.append(change.record)
    if change.unclean:
        out.unclean.append(
            UncleanElection(topic.name, index, change.leader, change.record.leader_epoch)
        )
