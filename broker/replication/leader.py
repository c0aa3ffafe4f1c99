"""Leader-side replication state of one partition (Kafka's Partition, leader half).

Sans-IO: the broker tells it what happened (a local append, a follower's fetch,
the passing of time, the controller's answer to an ISR change) and it answers
with decisions: the new high watermark, acks=all produces to release, ISR
changes to propose. It never touches the log or the network.

Rules (Kafka's):
- A follower is caught up when its log end offset reaches the leader's; it
  leaves the ISR after replica_lag_time_max_ms without being caught up, and
  rejoins once it reaches the high watermark (and the start of the leader's
  epoch, so it holds everything this leader wrote).
- The controller is the authority on the ISR (AlterPartition). While a change
  is in flight the leader computes the high watermark over the *maximal* ISR
  (current members plus pending additions), so an uncommitted shrink cannot
  advance the high watermark past what a removed member holds (KIP-497).
- The high watermark is the lowest log end offset in that set and never moves
  back. acks=all produces complete when it passes their last offset; if the
  ISR is then below min.insync.replicas they fail with
  NOT_ENOUGH_REPLICAS_AFTER_APPEND.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.errors import ErrorCode


@dataclass(slots=True)
class ReplicaProgress:
    """What the leader knows of one follower."""

    log_end_offset: int = -1
    last_caught_up_ms: int = -1
    last_fetch_ms: int = -1
    last_fetch_leader_leo: int = -1


@dataclass(frozen=True, slots=True)
class IsrProposal:
    """An AlterPartition request for the controller."""

    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Completion:
    """An acks=all produce released with this error code."""

    request_id: int
    error: ErrorCode


@dataclass(slots=True)
class _Waiter:
    request_id: int
    required_offset: int  # last offset of the appended batches; done when HW > it
    deadline_ms: int


@dataclass(slots=True)
class LeaderState:
    node_id: int
    leader_epoch: int
    partition_epoch: int
    replicas: tuple[int, ...]
    isr: frozenset[int]
    high_watermark: int
    log_end_offset: int
    epoch_start_offset: int
    lag_time_max_ms: int
    min_insync_replicas: int
    followers: dict[int, ReplicaProgress] = field(default_factory=dict)
    pending_isr: frozenset[int] | None = None
    waiters: list[_Waiter] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.node_id in self.replicas, (self.node_id, self.replicas)
        assert self.node_id in self.isr
        for replica in self.replicas:
            if replica != self.node_id:
                self.followers.setdefault(replica, ReplicaProgress())

    def begin(self, now_ms: int) -> None:
        """Becoming leader: every ISR member counts as caught up now (Kafka does the
        same), so nobody is dropped before it had a chance to fetch from us."""
        for replica, progress in self.followers.items():
            if replica in self.isr:
                progress.last_caught_up_ms = now_ms

    # -- inputs -----------------------------------------------------------------

    @property
    def maximal_isr(self) -> frozenset[int]:
        return self.isr | (self.pending_isr or frozenset())

    def can_accept_acks_all(self) -> bool:
        """acks=all needs min.insync.replicas in the committed ISR before appending."""
        return len(self.isr) >= self.min_insync_replicas

    def on_local_append(self, log_end_offset: int) -> None:
        assert log_end_offset >= self.log_end_offset
        self.log_end_offset = log_end_offset

    def add_waiter(self, request_id: int, last_offset: int, deadline_ms: int) -> None:
        self.waiters.append(_Waiter(request_id, last_offset, deadline_ms))

    def on_follower_fetch(self, replica_id: int, fetch_offset: int, now_ms: int) -> None:
        """A follower's Fetch says its log end offset is fetch_offset."""
        progress = self.followers.get(replica_id)
        if progress is None:
            return  # not a replica (a stale fetcher after reassignment): ignore
        if fetch_offset >= self.log_end_offset:
            progress.last_caught_up_ms = now_ms
        elif fetch_offset >= progress.last_fetch_leader_leo >= 0:
            # it reached where the leader was at its previous fetch: caught up then
            progress.last_caught_up_ms = max(progress.last_caught_up_ms, progress.last_fetch_ms)
        progress.log_end_offset = fetch_offset
        progress.last_fetch_ms = now_ms
        progress.last_fetch_leader_leo = self.log_end_offset

    # -- decisions ----------------------------------------------------------------

    def advance_high_watermark(self) -> bool:
        """Raise the HW to the lowest LEO in the maximal ISR; True if it moved."""
        lowest = self.log_end_offset
        for replica in self.maximal_isr:
            if replica != self.node_id:
                lowest = min(lowest, self.followers[replica].log_end_offset)
        if lowest > self.high_watermark:
            self.high_watermark = lowest
            return True
        return False

    def isr_change(self, now_ms: int, eligible: frozenset[int] | None = None) -> IsrProposal | None:
        """An ISR expansion or shrink to propose, unless one is already in flight.

        A follower joins only if it fetched within the lag time and, when
        `eligible` is given (unfenced brokers not shutting down), is in it: the
        controller would refuse anyone else (INELIGIBLE_REPLICA).
        """
        if self.pending_isr is not None:
            return None
        out_of_sync = {
            r
            for r in self.isr
            if r != self.node_id
            and now_ms - max(self.followers[r].last_caught_up_ms, 0) > self.lag_time_max_ms
        }
        joining = {
            r
            for r, p in self.followers.items()
            if r not in self.isr
            and p.log_end_offset >= max(self.high_watermark, self.epoch_start_offset)
            and now_ms - p.last_fetch_ms <= self.lag_time_max_ms
            and (eligible is None or r in eligible)
        }
        if not out_of_sync and not joining:
            return None
        new_isr = (self.isr - out_of_sync) | joining
        self.pending_isr = frozenset(joining)
        ordered = tuple(r for r in self.replicas if r in new_isr)
        return IsrProposal(self.leader_epoch, self.partition_epoch, ordered)

    def on_replicas_changed(self, replicas: tuple[int, ...]) -> None:
        """A reassignment added replicas (removals bump the leader epoch instead):
        track the new ones so their fetches count toward joining the ISR."""
        self.replicas = replicas
        for replica in replicas:
            if replica != self.node_id:
                self.followers.setdefault(replica, ReplicaProgress())
        for gone in [r for r in self.followers if r not in replicas]:
            del self.followers[gone]

    def on_isr_committed(self, isr: frozenset[int], partition_epoch: int) -> None:
        """The controller applied an ISR change (ours or its own)."""
        assert partition_epoch >= self.partition_epoch
        assert self.node_id in isr, "a leader is never removed from its own ISR"
        self.isr = isr
        self.partition_epoch = partition_epoch
        self.pending_isr = None

    def on_isr_rejected(self) -> None:
        """The proposal was stale or refused; propose again from the current state."""
        self.pending_isr = None

    def completions(self, now_ms: int) -> list[Completion]:
        """acks=all produces to answer now: replicated, or timed out."""
        done: list[Completion] = []
        kept: list[_Waiter] = []
        for waiter in self.waiters:
            if self.high_watermark > waiter.required_offset:
                enough = len(self.isr) >= self.min_insync_replicas
                code = ErrorCode.NONE if enough else ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
                done.append(Completion(waiter.request_id, code))
            elif now_ms >= waiter.deadline_ms:
                done.append(Completion(waiter.request_id, ErrorCode.REQUEST_TIMED_OUT))
            else:
                kept.append(waiter)
        self.waiters = kept
        return done

    def resign(self) -> list[Completion]:
        """Leadership moved away: every waiting produce fails so the client retries."""
        done = [Completion(w.request_id, ErrorCode.NOT_LEADER_OR_FOLLOWER) for w in self.waiters]
        self.waiters = []
        return done

    def next_deadline_ms(self) -> int | None:
        """When completions() or isr_change() next has time-based work."""
        deadlines = [w.deadline_ms for w in self.waiters]
        for r in self.isr:
            if r != self.node_id:
                deadlines.append(max(self.followers[r].last_caught_up_ms, 0) + self.lag_time_max_ms)
        return min(deadlines) if deadlines else None
