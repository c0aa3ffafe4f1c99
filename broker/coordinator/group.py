"""A classic consumer group: its state, generation, members and committed offsets.

The state machine is Kafka's ClassicGroup:

    Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
      ^                  |      ^                                  |        |
      |     everyone left|      +--member joins, leaves, expires---+        |
      +------------------+      +------------------ Stable <--leader's sync-+

Dead is terminal: the group was deleted or its partition unloaded. This
module holds state and the rules that read it; the coordinator decides when
to change it and what to answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


# Every legal state change, in one place (Kafka's validPreviousStates, read forwards).
TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE, GroupState.DEAD}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.COMPLETING_REBALANCE, GroupState.EMPTY, GroupState.DEAD}
    ),
    GroupState.COMPLETING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.PREPARING_REBALANCE, GroupState.DEAD}
    ),
    GroupState.STABLE: frozenset({GroupState.PREPARING_REBALANCE, GroupState.DEAD}),
    GroupState.DEAD: frozenset({GroupState.DEAD}),
}


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    join_request: int | None = None
    """Request id of this member's JoinGroup waiting for the join phase to end."""
    sync_request: int | None = None
    """Request id of this member's SyncGroup waiting for the leader's assignment."""
    is_new: bool = False
    """Joined during this rebalance and never completed a join."""
    expires_ms: int = 0
    """When the member is removed unless it heartbeats (or waits in a join or sync)."""

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols


@dataclass(slots=True)
class ClassicGroup:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    pending_members: dict[str, int] = field(default_factory=dict)
    """Member ids handed out with MEMBER_ID_REQUIRED -> when they lapse if not used."""
    static_members: dict[str, str] = field(default_factory=dict)
    """group.instance.id -> its current member id."""
    pending_sync: set[str] = field(default_factory=set)
    """Members of this generation that have not sent SyncGroup yet."""
    offsets: dict[tuple[str, int], CommittedOffset] = field(default_factory=dict)
    join_deadline_ms: int | None = None
    """PreparingRebalance: when the join phase ends whoever has rejoined."""
    sync_deadline_ms: int | None = None
    """CompletingRebalance/Stable: members still in pending_sync are removed then."""
    initial_delay_remaining_ms: int | None = None
    """Set while an initial rebalance delay runs: how much longer it may be extended."""
    new_member_added: bool = False
    state_timestamp_ms: int = -1

    def transition(self, new_state: GroupState, now_ms: int) -> None:
        assert new_state in TRANSITIONS[self.state], (
            f"group {self.group_id}: illegal transition {self.state.value} -> {new_state.value}"
        )
        self.state = new_state
        self.state_timestamp_ms = now_ms

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    @property
    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def has_all_members_joined(self) -> bool:
        return not self.pending_members and all(
            m.join_request is not None for m in self.members.values()
        )

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        """Kafka's rule: an empty group takes any non-empty type and protocol list; a
        group with members needs the same type and a protocol every member shares."""
        if not self.members:
            return bool(protocol_type) and bool(names)
        return protocol_type == self.protocol_type and bool(self.candidate_protocols() & set(names))

    def candidate_protocols(self) -> set[str]:
        sets = [{name for name, _ in m.protocols} for m in self.members.values()]
        return set.intersection(*sets) if sets else set()

    def select_protocol(self) -> str:
        """Each member votes for its most preferred candidate; most votes wins, ties go
        to the protocol the leader prefers (Kafka breaks ties arbitrarily)."""
        candidates = self.candidate_protocols()
        assert candidates, f"group {self.group_id}: members share no protocol"
        votes: dict[str, int] = dict.fromkeys(candidates, 0)
        for member in self.members.values():
            choice = next(name for name, _ in member.protocols if name in candidates)
            votes[choice] += 1
        leader = self.members.get(self.leader_id or "") or next(iter(self.members.values()))
        rank = {name: i for i, (name, _) in enumerate(leader.protocols)}
        return max(candidates, key=lambda name: (votes[name], -rank.get(name, len(rank))))

    def add_member(self, member: Member, protocol_type: str) -> None:
        assert member.member_id not in self.members
        if not self.members:
            self.protocol_type = protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id

    def remove_member(self, member_id: str) -> Member:
        member = self.members.pop(member_id)
        self.pending_sync.discard(member_id)
        instance_id = member.group_instance_id
        if instance_id is not None and self.static_members.get(instance_id) == member_id:
            del self.static_members[instance_id]
        if self.leader_id == member_id:
            self.leader_id = self._choose_leader()
        return member

    def _choose_leader(self) -> str | None:
        """Prefer a member that has rejoined in this rebalance."""
        joined = [m.member_id for m in self.members.values() if m.join_request is not None]
        if joined:
            return joined[0]
        return next(iter(self.members), None)

    def elect_joined_leader(self) -> bool:
        """Make a rejoined member the leader if the current one did not rejoin."""
        leader = self.members.get(self.leader_id or "")
        if leader is not None and leader.join_request is not None:
            return True
        joined = [m.member_id for m in self.members.values() if m.join_request is not None]
        if not joined:
            return False
        self.leader_id = joined[0]
        return True

    def replace_static_member(self, instance_id: str, old_id: str, new_id: str) -> Member:
        member = self.members.pop(old_id)
        member.member_id = new_id
        self.members[new_id] = member
        self.static_members[instance_id] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        return member

    def static_member_fenced(self, instance_id: str | None, member_id: str) -> bool:
        if instance_id is None:
            return False
        current = self.static_members.get(instance_id)
        return current is not None and current != member_id
