"""Partition reassignment, Kafka's KIP-455 flow.

Starting a reassignment from `current` to `target` sets replicas to target
followed by the replicas being removed, with adding = target - current and
removing = current - target. Followers on the adding brokers catch up and the
leader adds them to the ISR (AlterPartition); the partition change that puts
the last of them in the ISR also completes the reassignment (elections.py):
replicas become exactly `target`, the removed ones leave the ISR, and a leader
being removed hands over to the first target replica in the ISR.
Cancelling drops the adding replicas and keeps the removing ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.controller.elections import Election, Target, partitions
from broker.controller.image import MetadataImage, PartitionState
from protocol.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class Reassignment:
    """One reassignment in progress, as ListPartitionReassignments shows it."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    adding_replicas: tuple[int, ...]
    removing_replicas: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReassignmentResult:
    topic: str
    partition: int
    error: ErrorCode = ErrorCode.NONE
    message: str | None = None


def target_of(state: PartitionState) -> tuple[int, ...]:
    """The replicas a partition is heading to (its replicas when none is in progress)."""
    return tuple(b for b in state.replicas if b not in state.removing_replicas)


def check_target(target: tuple[int, ...], registered: set[int]) -> str | None:
    """Why `target` is not an acceptable replica list, or None."""
    if not target:
        return "the target replica list is empty"
    if len(set(target)) != len(target):
        return f"the target replica list {list(target)} repeats a broker"
    unknown = sorted(set(target) - registered)
    if unknown:
        return f"the target names brokers that are not registered: {unknown}"
    return None


def start(state: PartitionState, target: tuple[int, ...]) -> Target | None:
    """The change that starts (or redirects) a reassignment; None when it is a no-op."""
    if target == target_of(state):
        return None
    current = state.replicas
    removing = tuple(b for b in current if b not in target)
    adding = tuple(b for b in target if b not in current)
    return Target(replicas=target + removing, adding=adding, removing=removing)


def revert(state: PartitionState, unclean: bool) -> tuple[Target, bool]:
    """The change that cancels a reassignment, and whether it needs an unclean election.

    When every ISR member was being added, the first remaining replica is put in
    the ISR: that is an unclean election, allowed only where unclean is enabled.
    """
    replicas = tuple(b for b in state.replicas if b not in state.adding_replicas)
    isr = tuple(b for b in state.isr if b not in state.adding_replicas)
    needs_unclean = not isr
    if needs_unclean:
        isr = replicas[:1]
    election = Election.UNCLEAN if unclean else Election.ONLINE
    return Target(isr=isr, replicas=replicas, adding=(), removing=(), election=election), (
        needs_unclean
    )


def in_progress(image: MetadataImage) -> list[Reassignment]:
    return [
        Reassignment(
            topic.name, index, state.replicas, state.adding_replicas, state.removing_replicas
        )
        for topic, index, state in partitions(image)
        if state.reassigning
    ]
