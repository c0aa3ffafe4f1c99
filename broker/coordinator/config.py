"""Group coordinator settings, with Kafka's names and (where we keep them) Kafka's defaults."""

from __future__ import annotations

from dataclasses import dataclass

OFFSETS_TOPIC = "__consumer_offsets"


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Limits and timeouts of the classic group protocol.

    ``initial_rebalance_delay_ms`` is Kafka's group.initial.rebalance.delay.ms
    (3000): a new, empty group waits that long for more members before its first
    generation, so a fleet of consumers starting together gets one rebalance
    instead of one per member. Development clusters and tests lower it (0-100 ms):
    with a single consumer the delay only slows start-up.
    """

    session_timeout_min_ms: int = 6000
    """group.min.session.timeout.ms: a JoinGroup asking for less gets INVALID_SESSION_TIMEOUT."""
    session_timeout_max_ms: int = 1800000
    """group.max.session.timeout.ms (Kafka's default, 30 minutes)."""
    initial_rebalance_delay_ms: int = 3000
    """group.initial.rebalance.delay.ms."""
    group_members_max: int = 1000
    """group.max.size. Kafka: Int.MAX. A group's members all live in one metadata record
    and one leader assignment; 1000 consumers is far beyond any partition count we host."""
    groups_max: int = 100000
    """Groups (with or without members) one coordinator partition keeps. Kafka: no limit.
    Beyond it, requests that would create a group get COORDINATOR_NOT_AVAILABLE."""
    member_metadata_bytes_max: int = 65536
    """Protocol metadata of one member's JoinGroup (all protocols together). Kafka bounds
    it only by the request size; here a larger join gets INVALID_REQUEST."""
    offset_metadata_bytes_max: int = 4096
    """offset.metadata.max.bytes: longer commit metadata gets OFFSET_METADATA_TOO_LARGE."""
    new_member_join_timeout_ms: int = 300000
    """How long a member that has never completed a join may wait in one (Kafka's
    NewMemberJoinTimeoutMs): its client may have given up on the request."""
    offsets_topic_num_partitions: int = 50
    """offsets.topic.num.partitions: fixed once __consumer_offsets exists."""
    offsets_topic_replication_factor: int = 3
    """offsets.topic.replication.factor, capped at the number of live brokers."""
    offsets_topic_segment_bytes: int = 104857600
    """offsets.topic.segment.bytes."""
    offsets_commit_timeout_ms: int = 5000
    """offsets.commit.timeout.ms: how long a write waits for the replicas (then
    REQUEST_TIMED_OUT, which the client sees as COORDINATOR_NOT_AVAILABLE)."""
    load_chunk_bytes: int = 1048576
    """Bytes of __consumer_offsets read per step while loading (requests are served between)."""

    def __post_init__(self) -> None:
        assert 0 < self.session_timeout_min_ms <= self.session_timeout_max_ms
        assert self.initial_rebalance_delay_ms >= 0
        assert self.group_members_max > 0 and self.groups_max > 0
        assert self.offsets_topic_num_partitions > 0
