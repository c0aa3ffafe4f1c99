"""RaftNode: one member of a Raft group as a sans-IO state machine.

Inputs are `step(message, now_ms)`, `tick(now_ms)`, `propose(data, now_ms)`;
outputs are effects (broker/effects.py). Safety rests on the driver contract:

* execute every effect a call returns before calling the node again, making
  every `Persist` durable before performing any `Send` of the same batch
  (so no peer hears of a vote, term or entry that a crash could take back);
* call `committed()` only after that, and apply what it returns in order.

Because of the first rule the node treats everything it emitted in earlier
calls as durable: that is when the leader counts its own entries toward a
commit quorum.

Elections use pre-vote (a pre-candidate asks whether it *could* win before
bumping its term, so a node rejoining from a partition cannot depose a healthy
leader) and check-quorum (a leader that has not heard from a majority within
an election timeout steps down; voters that have heard from a leader within the
minimum election timeout ignore vote requests: leader stickiness).

Learners (KRaft's observers, etcd's learners) receive the log like followers
but take no part in elections and do not count toward any quorum: the leader
replicates to them, and they follow its commit index. A learner's role is
fixed; it never campaigns, so it can never lead.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from broker.effects import Effect, Persist, Send, SetTimer
from broker.raft.messages import (
    AppendEntries,
    AppendResponse,
    Entry,
    InstallSnapshot,
    Message,
    Snapshot,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from broker.raft.storage import (
    AppendOps,
    HardState,
    MemoryStorage,
    Operation,
    RaftLog,
    SaveSnapshot,
)

log = logging.getLogger(__name__)


class Rng(Protocol):
    """The randomness a node needs (a seeded random.Random fits)."""

    def randrange(self, start: int, stop: int) -> int: ...


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"
    LEARNER = "learner"


# Every legal role change, in one place. FOLLOWER -> FOLLOWER is a term change
# or a lost pre-vote; PRE_CANDIDATE -> PRE_CANDIDATE a pre-vote round that timed
# out; a candidate whose election times out starts over with a pre-vote.
# LEARNER -> LEARNER is a term or leader change: a learner stays one for life,
# and no voter ever becomes one.
TRANSITIONS: dict[Role, frozenset[Role]] = {
    Role.FOLLOWER: frozenset({Role.FOLLOWER, Role.PRE_CANDIDATE}),
    Role.PRE_CANDIDATE: frozenset({Role.FOLLOWER, Role.PRE_CANDIDATE, Role.CANDIDATE}),
    Role.CANDIDATE: frozenset({Role.FOLLOWER, Role.PRE_CANDIDATE, Role.LEADER}),
    Role.LEADER: frozenset({Role.FOLLOWER}),
    Role.LEARNER: frozenset({Role.LEARNER}),
}


class NotLeader(Exception):
    """Proposals go to the leader; `leader_hint` is who we believe it is (or None)."""

    def __init__(self, leader_hint: int | None) -> None:
        super().__init__(f"not the leader (leader hint: {leader_hint})")
        self.leader_hint = leader_hint


class ProposalDropped(Exception):
    """The leader already holds `uncommitted_entries_max` uncommitted entries."""


class Replication(enum.Enum):
    """How the leader feeds one follower (etcd's progress states)."""

    PROBE = "probe"  # one AppendEntries at a time until we learn where logs match
    REPLICATE = "replicate"  # optimistic pipelining, bounded by inflight_max
    SNAPSHOT = "snapshot"  # an InstallSnapshot is on its way


@dataclass(slots=True)
class Progress:
    """The leader's view of one follower."""

    next_index: int
    match_index: int = 0
    state: Replication = Replication.PROBE
    paused: bool = False  # PROBE: an AppendEntries is outstanding
    inflight: deque[int] = field(default_factory=deque)  # REPLICATE: last index of each send
    recent_active: bool = False  # heard from since the last check-quorum
    commit_sent: int = 0  # highest leader_commit sent to this follower
    snapshot_index: int = 0
    snapshot_sent_ms: int = 0


@dataclass(frozen=True, slots=True)
class FollowerStatus:
    node_id: int
    match_index: int
    lag: int
    state: str
    learner: bool


@dataclass(frozen=True, slots=True)
class RaftStatus:
    """What an operator sees for one member."""

    node_id: int
    role: str
    term: int
    leader_id: int | None
    commit_index: int
    applied_index: int
    last_index: int
    snapshot_index: int
    followers: tuple[FollowerStatus, ...]


class RaftNode:
    """One voter or learner of a Raft group; see the module docstring for the contract."""

    def __init__(
        self,
        node_id: int,
        voters: tuple[int, ...],
        storage: RaftLog,
        rng: Rng,
        *,
        learners: tuple[int, ...] = (),
        election_timeout_ms: tuple[int, int] = (1000, 2000),
        heartbeat_interval_ms: int = 200,
        max_entries_bytes: int = 64 * 1024,
        inflight_max: int = 16,
        snapshot_threshold_entries: int = 1000,
        uncommitted_entries_max: int = 4096,
    ) -> None:
        lo, hi = election_timeout_ms
        members = (*voters, *learners)
        assert voters and len(set(members)) == len(members), (voters, learners)
        assert node_id in members, (node_id, voters, learners)
        assert 0 < heartbeat_interval_ms < lo < hi, (heartbeat_interval_ms, lo, hi)
        assert inflight_max > 0 and max_entries_bytes > 0 and snapshot_threshold_entries > 0
        self.node_id = node_id
        self.voters = tuple(sorted(voters))
        self.learners = tuple(sorted(learners))
        # everyone a leader replicates to, and the subset that votes and acks toward commit
        self.peers = tuple(m for m in sorted(members) if m != node_id)
        self._voting_peers = tuple(v for v in self.voters if v != node_id)
        self.quorum = len(self.voters) // 2 + 1
        self._passive_role = Role.LEARNER if node_id in self.learners else Role.FOLLOWER
        self._rng = rng
        self._election_timeout_ms = (lo, hi)
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._max_entries_bytes = max_entries_bytes
        self._inflight_max = inflight_max
        self._snapshot_threshold_entries = snapshot_threshold_entries
        self._uncommitted_entries_max = uncommitted_entries_max

        self._log = MemoryStorage.copy_of(storage)
        hard_state = self._log.hard_state()
        snapshot = self._log.snapshot()
        self.term = hard_state.term
        self.voted_for = hard_state.voted_for
        self.role = self._passive_role
        self.leader_id: int | None = None
        self.commit_index = snapshot.index
        self.applied_index = snapshot.index
        self._restore: Snapshot | None = snapshot if snapshot.index > 0 else None
        self._persisted_index = self._log.last_index()
        self._now_ms: int | None = None
        self._election_deadline_ms = 0
        self._heartbeat_deadline_ms = 0
        self._check_quorum_deadline_ms = 0
        self._leader_contact_ms: int | None = None
        self._votes: dict[int, bool] = {}
        self._progress: dict[int, Progress] = {}
        self._out: list[Effect] = []

    # ------------------------------------------------------------------ inputs

    def step(self, message: Message, now_ms: int) -> list[Effect]:
        """Handle one message from a peer."""
        self._begin(now_ms)
        if self.role is Role.LEARNER and isinstance(message, VoteRequest | VoteResponse):
            log.warning("raft node %d: learner ignores %r", self.node_id, message)
        elif self._check_term(message, now_ms):
            handler = _HANDLERS[type(message)]
            handler(self, message, now_ms)
        return self._finish()

    def tick(self, now_ms: int) -> list[Effect]:
        """Fire whatever timers are due: elections, heartbeats, check-quorum."""
        self._begin(now_ms)
        if self.role is Role.LEADER:
            if now_ms >= self._check_quorum_deadline_ms:
                self._check_quorum(now_ms)
            if self.role is Role.LEADER and now_ms >= self._heartbeat_deadline_ms:
                self._heartbeat_deadline_ms = now_ms + self._heartbeat_interval_ms
                self._broadcast_heartbeat(now_ms)
        elif now_ms >= self._election_deadline_ms:
            self._on_election_timeout(now_ms)
        assert self._next_deadline_ms() > now_ms, (self._next_deadline_ms(), now_ms)
        return self._finish()

    def campaign(self, now_ms: int) -> list[Effect]:
        """Start a (pre-vote) election now instead of waiting for the timeout
        (on a learner, which never campaigns, this does nothing)."""
        self._begin(now_ms)
        if self.role not in (Role.LEADER, Role.LEARNER):
            self._start_pre_vote(now_ms)
        return self._finish()

    def propose(self, data: bytes, now_ms: int) -> tuple[int, list[Effect]]:
        """Append `data` to the log as leader; returns its index and the effects.

        The proposal succeeded once `committed()` returns an entry at that index
        carrying `data`; a different entry there means it was lost to a new leader.
        """
        self._begin(now_ms)
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if self._log.last_index() - self.commit_index >= self._uncommitted_entries_max:
            raise ProposalDropped(f"{self._uncommitted_entries_max} entries await commit")
        index = self._append_local(data)
        for peer in self.peers:
            self._send_append(peer, now_ms, allow_empty=False)
        return index, self._finish()

    def committed(self) -> list[Entry]:
        """Entries newly committed since the last call, in order, each once.

        Call `restore()` first: after a restart or an installed snapshot the
        state machine loads that snapshot, and entries continue after it.
        """
        self._persisted_index = self._log.last_index()
        if self.role is Role.LEADER:
            self._maybe_commit()
        if self.commit_index <= self.applied_index:
            return []
        entries = self._log.entries(self.applied_index + 1, self.commit_index + 1, 1 << 62)
        assert entries[-1].index == self.commit_index, (entries[-1], self.commit_index)
        self.applied_index = self.commit_index
        return entries

    def restore(self) -> Snapshot | None:
        """The snapshot the state machine must load before applying `committed()`, once."""
        snapshot, self._restore = self._restore, None
        return snapshot

    def wants_snapshot(self) -> bool:
        """True when enough entries were applied since the last snapshot to compact."""
        since = self.applied_index - self._log.snapshot().index
        return since >= self._snapshot_threshold_entries

    def compact(self, snapshot_index: int, data: bytes) -> list[Effect]:
        """Take the state machine's image at an applied index as the new snapshot."""
        assert self._log.snapshot().index < snapshot_index <= self.applied_index, (
            snapshot_index,
            self.applied_index,
        )
        term = self._log.term_at(snapshot_index)
        assert term is not None, snapshot_index
        operation = SaveSnapshot(Snapshot(snapshot_index, term, data))
        self._log.apply(operation)
        return [Persist(operation)]

    def status(self) -> RaftStatus:
        """Role, term, leader, indexes and (on a leader) each follower's and learner's lag."""
        last = self._log.last_index()
        followers = tuple(
            FollowerStatus(
                peer,
                pr.match_index,
                last - pr.match_index,
                pr.state.value,
                learner=peer in self.learners,
            )
            for peer, pr in sorted(self._progress.items())
        )
        return RaftStatus(
            node_id=self.node_id,
            role=self.role.value,
            term=self.term,
            leader_id=self.leader_id,
            commit_index=self.commit_index,
            applied_index=self.applied_index,
            last_index=last,
            snapshot_index=self._log.snapshot().index,
            followers=followers,
        )

    @property
    def raft_log(self) -> RaftLog:
        """Read-only view of this node's log (tests and status pages)."""
        return self._log

    # ----------------------------------------------------- call bookkeeping

    def _begin(self, now_ms: int) -> None:
        """Start a call: time only moves forward; earlier effects are durable."""
        assert self._now_ms is None or now_ms >= self._now_ms, (now_ms, self._now_ms)
        assert not self._out
        if self._now_ms is None:
            self._reset_election_timer(now_ms)
        self._now_ms = now_ms
        self._persisted_index = self._log.last_index()

    def _finish(self) -> list[Effect]:
        """End a call: hand over the effects, with the next time tick() is due
        (possibly already past, if a message arrived before an overdue tick)."""
        out, self._out = self._out, []
        out.append(SetTimer(self._next_deadline_ms()))
        return out

    def _next_deadline_ms(self) -> int:
        if self.role is Role.LEADER:
            return min(self._heartbeat_deadline_ms, self._check_quorum_deadline_ms)
        return self._election_deadline_ms

    def _persist(self, operation: Operation) -> None:
        self._log.apply(operation)
        self._out.append(Persist(operation))

    def _send(self, to: int, message: Message) -> None:
        assert to != self.node_id
        self._out.append(Send(to, message))

    # ---------------------------------------------------- terms and roles

    def _set_hard_state(self, term: int, voted_for: int | None) -> None:
        """Change term/vote; each term only grows and each vote is cast once."""
        assert term >= self.term, (term, self.term)
        if term == self.term and self.voted_for is not None:
            assert voted_for == self.voted_for, (term, self.voted_for, voted_for)
        if (term, voted_for) != (self.term, self.voted_for):
            self.term, self.voted_for = term, voted_for
            self._persist(HardState(term, voted_for))

    def _transition(self, role: Role, reason: str) -> None:
        assert role in TRANSITIONS[self.role], (self.role, role)
        if role is not self.role:
            log.info(
                "raft node %d: %s -> %s at term %d (%s; leader %s)",
                self.node_id,
                self.role.value,
                role.value,
                self.term,
                reason,
                self.leader_id,
            )
        self.role = role
        self._progress = {}
        self._votes = {}

    def _reset_election_timer(self, now_ms: int) -> None:
        lo, hi = self._election_timeout_ms
        self._election_deadline_ms = now_ms + self._rng.randrange(lo, hi)

    def _become_follower(self, term: int, leader_id: int | None, now_ms: int, why: str) -> None:
        if term > self.term:
            self._set_hard_state(term, None)
        self.leader_id = leader_id
        self._transition(self._passive_role, why)
        self._reset_election_timer(now_ms)
        if leader_id is not None:
            self._leader_contact_ms = now_ms

    def _in_lease(self, now_ms: int) -> bool:
        """Have we heard from a live leader within the minimum election timeout?"""
        if self.role is Role.LEADER:
            return True
        return (
            self.leader_id is not None
            and self._leader_contact_ms is not None
            and now_ms - self._leader_contact_ms < self._election_timeout_ms[0]
        )

    def _check_term(self, m: Message, now_ms: int) -> bool:
        """Apply the rules every message obeys about terms; False = drop it."""
        if m.term > self.term:
            if isinstance(m, VoteRequest) and self._in_lease(now_ms):
                return False  # leader stickiness: a live leader is not deposed
            if isinstance(m, VoteRequest) and m.pre_vote:
                return True  # pre-votes never change a term
            if isinstance(m, VoteResponse) and m.pre_vote and m.granted:
                return True  # we bump our own term once a quorum grants
            leader = m.leader_id if isinstance(m, AppendEntries | InstallSnapshot) else None
            self._become_follower(m.term, leader, now_ms, f"saw term {m.term}")
            return True
        if m.term < self.term:
            if isinstance(m, AppendEntries | InstallSnapshot):
                # a deposed leader learns our term from the reject and steps down
                self._send(m.leader_id, AppendResponse(self.term, self.node_id, False, 0, 0))
            elif isinstance(m, VoteRequest) and m.pre_vote:
                self._send(m.candidate_id, VoteResponse(self.term, self.node_id, False, True))
            return False
        return True

    # --------------------------------------------------------------- elections

    def _on_election_timeout(self, now_ms: int) -> None:
        if self.role is Role.LEARNER:
            # never a candidate: only stop naming a leader we no longer hear from
            self._become_follower(self.term, None, now_ms, "leader silent")
        else:
            self._start_pre_vote(now_ms)

    def _start_pre_vote(self, now_ms: int) -> None:
        assert self.node_id in self.voters, f"learner {self.node_id} campaigns"
        self.leader_id = None
        self._transition(Role.PRE_CANDIDATE, "election timeout")
        self._reset_election_timer(now_ms)
        self._votes = {self.node_id: True}
        request = VoteRequest(
            self.term + 1,
            self.node_id,
            self._log.last_index(),
            self._last_term(),
            pre_vote=True,
        )
        for peer in self._voting_peers:
            self._send(peer, request)
        self._tally(now_ms)

    def _campaign(self, now_ms: int) -> None:
        self._transition(Role.CANDIDATE, "won pre-vote")
        self._set_hard_state(self.term + 1, self.node_id)
        self._reset_election_timer(now_ms)
        self._votes = {self.node_id: True}
        request = VoteRequest(
            self.term,
            self.node_id,
            self._log.last_index(),
            self._last_term(),
            pre_vote=False,
        )
        for peer in self._voting_peers:
            self._send(peer, request)
        self._tally(now_ms)

    def _tally(self, now_ms: int) -> None:
        granted = sum(1 for v in self._votes.values() if v)
        rejected = len(self._votes) - granted
        if granted >= self.quorum:
            if self.role is Role.PRE_CANDIDATE:
                self._campaign(now_ms)
            else:
                self._become_leader(now_ms)
        elif rejected >= self.quorum:
            self._become_follower(self.term, None, now_ms, "lost election")

    def _last_term(self) -> int:
        term = self._log.term_at(self._log.last_index())
        assert term is not None
        return term

    def _log_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft's election restriction: the candidate's log is at least as recent."""
        ours = self._last_term()
        return last_term > ours or (last_term == ours and last_index >= self._log.last_index())

    def _on_vote_request(self, m: VoteRequest, now_ms: int) -> None:
        up_to_date = self._log_up_to_date(m.last_log_index, m.last_log_term)
        if m.pre_vote:
            granted = m.term > self.term and up_to_date
            reply_term = m.term if granted else self.term
            self._send(m.candidate_id, VoteResponse(reply_term, self.node_id, granted, True))
            return
        free = self.voted_for == m.candidate_id or (
            self.voted_for is None and self.leader_id is None
        )
        granted = free and up_to_date
        if granted:
            self._set_hard_state(self.term, m.candidate_id)
            if self.role is not Role.FOLLOWER:
                self._become_follower(self.term, None, now_ms, f"voted for {m.candidate_id}")
            self._reset_election_timer(now_ms)
        self._send(m.candidate_id, VoteResponse(self.term, self.node_id, granted, False))

    def _on_vote_response(self, m: VoteResponse, now_ms: int) -> None:
        if m.pre_vote:
            if self.role is not Role.PRE_CANDIDATE:
                return
            if m.granted and m.term != self.term + 1:
                return  # a grant from some other round
        elif self.role is not Role.CANDIDATE or m.term != self.term:
            return
        self._votes.setdefault(m.voter_id, m.granted)
        self._tally(now_ms)

    # ------------------------------------------------------------ leadership

    def _become_leader(self, now_ms: int) -> None:
        self.leader_id = self.node_id
        self._transition(Role.LEADER, "won election")
        last = self._log.last_index()
        self._progress = {peer: Progress(next_index=last + 1) for peer in self.peers}
        self._heartbeat_deadline_ms = now_ms + self._heartbeat_interval_ms
        self._check_quorum_deadline_ms = now_ms + self._election_timeout_ms[0]
        self._append_local(b"")  # commits earlier terms' entries under this term
        for peer in self.peers:
            self._send_append(peer, now_ms, allow_empty=True)
        self._maybe_commit()

    def _append_local(self, data: bytes) -> int:
        entry = Entry(self._log.last_index() + 1, self.term, data)
        self._persist(AppendOps((entry,)))
        return entry.index

    def _check_quorum(self, now_ms: int) -> None:
        """Step down unless a majority of voters answered us within the last
        election timeout (learners' answers keep nobody in office)."""
        active = 1 + sum(1 for v in self._voting_peers if self._progress[v].recent_active)
        for pr in self._progress.values():
            pr.recent_active = False
        self._check_quorum_deadline_ms = now_ms + self._election_timeout_ms[0]
        if active < self.quorum:
            self._become_follower(self.term, None, now_ms, f"check-quorum: {active} active")

    def _broadcast_heartbeat(self, now_ms: int) -> None:
        for peer, pr in self._progress.items():
            if pr.state is Replication.SNAPSHOT:
                if now_ms - pr.snapshot_sent_ms >= self._election_timeout_ms[0]:
                    self._send_snapshot(peer, now_ms)
                continue
            pr.paused = False
            self._send_append(peer, now_ms, allow_empty=True)

    def _send_append(self, peer: int, now_ms: int, *, allow_empty: bool) -> None:
        """Send `peer` the entries after its next index, within the flow limits."""
        pr = self._progress[peer]
        if pr.state is Replication.SNAPSHOT or (pr.state is Replication.PROBE and pr.paused):
            return
        prev_index = pr.next_index - 1
        prev_term = self._log.term_at(prev_index)
        if prev_term is None:
            self._send_snapshot(peer, now_ms)
            return
        last = self._log.last_index()
        entries: list[Entry] = []
        if pr.next_index <= last and len(pr.inflight) < self._inflight_max:
            entries = self._log.entries(pr.next_index, last + 1, self._max_entries_bytes)
        if not entries and not allow_empty:
            return
        message = AppendEntries(
            self.term, self.node_id, prev_index, prev_term, tuple(entries), self.commit_index
        )
        self._send(peer, message)
        pr.commit_sent = max(pr.commit_sent, self.commit_index)
        if pr.state is Replication.PROBE:
            pr.paused = True
        elif entries:
            pr.next_index = entries[-1].index + 1
            pr.inflight.append(entries[-1].index)

    def _send_snapshot(self, peer: int, now_ms: int) -> None:
        pr = self._progress[peer]
        snapshot = self._log.snapshot()
        pr.state = Replication.SNAPSHOT
        pr.snapshot_index = snapshot.index
        pr.snapshot_sent_ms = now_ms
        pr.inflight.clear()
        self._send(peer, InstallSnapshot(self.term, self.node_id, snapshot))

    def _maybe_commit(self) -> bool:
        """Advance the commit index to what a majority of voters holds, if of
        this term; what learners hold never counts (nor does their slowness)."""
        matches = sorted(
            [self._persisted_index, *(self._progress[v].match_index for v in self._voting_peers)],
            reverse=True,
        )
        index = matches[self.quorum - 1]
        if index <= self.commit_index or self._log.term_at(index) != self.term:
            return False
        self._commit_to(index)
        return True

    def _commit_to(self, index: int) -> None:
        assert index >= self.commit_index, (index, self.commit_index)
        assert index <= self._log.last_index(), (index, self._log.last_index())
        self.commit_index = index

    def _on_append_response(self, m: AppendResponse, now_ms: int) -> None:
        if self.role is not Role.LEADER:
            return
        pr = self._progress[m.follower_id]
        pr.recent_active = True
        if m.success:
            self._on_append_success(m.follower_id, pr, m.match_index, now_ms)
        else:
            self._on_append_reject(m.follower_id, pr, m, now_ms)

    def _on_append_success(self, peer: int, pr: Progress, match: int, now_ms: int) -> None:
        advanced = False
        if match > pr.match_index:
            pr.match_index = match
            while pr.inflight and pr.inflight[0] <= match:
                pr.inflight.popleft()
            advanced = self._maybe_commit()
        if pr.state is Replication.PROBE:
            # logs match up to match_index: start pipelining from there
            pr.state, pr.paused = Replication.REPLICATE, False
            pr.next_index = pr.match_index + 1
            pr.inflight.clear()
        else:
            pr.next_index = max(pr.next_index, pr.match_index + 1)
        if advanced:
            for other, other_pr in self._progress.items():
                if other != peer:
                    self._send_append(other, now_ms, allow_empty=self._owes_commit(other_pr))
        self._send_append(peer, now_ms, allow_empty=self._owes_commit(pr))

    def _owes_commit(self, pr: Progress) -> bool:
        """Should an idle follower hear the commit index now rather than at the
        next heartbeat? (A busy one hears it when its in-flight appends are acked;
        an empty append racing them would only be rejected.)"""
        idle = pr.state is Replication.PROBE or not pr.inflight
        return idle and pr.commit_sent < self.commit_index

    def _on_append_reject(self, peer: int, pr: Progress, m: AppendResponse, now_ms: int) -> None:
        rejected = m.match_index
        # A reject of prev == match is not stale: the follower dropped the entries
        # after match that the message carried (it overtook an earlier append).
        if pr.state is Replication.SNAPSHOT or rejected < pr.match_index:
            return  # stale: we already know better
        if pr.state is Replication.PROBE and rejected != pr.next_index - 1:
            return  # a reject of an older probe
        if pr.state is Replication.PROBE and rejected == pr.match_index:
            # The follower lacks the entry it acked as match_index: either this
            # reject overtook that ack, or its disk lost acked writes (a machine
            # crash without fsync), in which case probing at match_index would
            # never end. Lowering match_index costs one more probe at worst; the
            # commit index never moves back.
            log.debug(
                "raft node %d: follower %d rejected its match %d (now at most %d)",
                self.node_id,
                peer,
                pr.match_index,
                m.hint_index,
            )
            pr.match_index = min(pr.match_index, m.hint_index)
        pr.state, pr.paused = Replication.PROBE, False
        pr.inflight.clear()
        pr.next_index = max(pr.match_index + 1, min(rejected, m.hint_index + 1))
        self._send_append(peer, now_ms, allow_empty=True)

    def _on_snapshot_response(self, m: SnapshotResponse, now_ms: int) -> None:
        if self.role is not Role.LEADER:
            return
        pr = self._progress[m.follower_id]
        pr.recent_active = True
        if m.match_index > pr.match_index:
            pr.match_index = m.match_index
            self._maybe_commit()
        if pr.state is Replication.SNAPSHOT and m.match_index >= pr.snapshot_index:
            pr.state, pr.paused = Replication.PROBE, False
            pr.next_index = pr.match_index + 1
            self._send_append(m.follower_id, now_ms, allow_empty=False)

    # -------------------------------------------------------------- following

    def _follow(self, leader_id: int, now_ms: int) -> None:
        """A leader of our term spoke: follow it and push the election back."""
        assert self.role is not Role.LEADER, f"two leaders in term {self.term}"
        if self.role is not self._passive_role or self.leader_id != leader_id:
            self._become_follower(self.term, leader_id, now_ms, f"leader {leader_id}")
        self._reset_election_timer(now_ms)
        self._leader_contact_ms = now_ms

    def _on_append_entries(self, m: AppendEntries, now_ms: int) -> None:
        self._follow(m.leader_id, now_ms)
        prev_index, prev_term, entries = m.prev_log_index, m.prev_log_term, m.entries
        if prev_index < self.commit_index:
            # our committed prefix equals the leader's: skip what it covers
            entries = tuple(e for e in entries if e.index > self.commit_index)
            prev_index = self.commit_index
            prev_term = self._log.term_at(prev_index)
        elif self._log.term_at(prev_index) != prev_term:
            hint = self._reject_hint(prev_index, prev_term)
            self._send(
                m.leader_id, AppendResponse(self.term, self.node_id, False, prev_index, hint)
            )
            return
        self._append_from_leader(entries)
        match = prev_index + len(entries)
        if m.leader_commit > self.commit_index:
            self._commit_to(max(self.commit_index, min(m.leader_commit, match)))
        self._send(m.leader_id, AppendResponse(self.term, self.node_id, True, match, 0))

    def _reject_hint(self, prev_index: int, prev_term: int) -> int:
        """The highest index that might still match: none of ours with a term
        above prev_term can be in the leader's log before prev_index."""
        index = min(prev_index, self._log.last_index())
        while index > self.commit_index:
            term = self._log.term_at(index)
            if term is not None and term <= prev_term:
                break
            index -= 1
        return index

    def _append_from_leader(self, entries: tuple[Entry, ...]) -> None:
        """Append what we lack; truncate only at the first real conflict."""
        for position, entry in enumerate(entries):
            ours = self._log.term_at(entry.index)
            if ours == entry.term:
                continue
            assert entry.index > self.commit_index, f"leader overwrites committed {entry.index}"
            self._persist(AppendOps(entries[position:]))
            return

    def _on_install_snapshot(self, m: InstallSnapshot, now_ms: int) -> None:
        self._follow(m.leader_id, now_ms)
        snapshot = m.snapshot
        if snapshot.index > self.commit_index:
            if self._log.term_at(snapshot.index) != snapshot.term:
                self._persist(SaveSnapshot(snapshot))
                self.applied_index = snapshot.index
                self._restore = snapshot
                log.info(
                    "raft node %d: installed snapshot at %d (term %d) from leader %d",
                    self.node_id,
                    snapshot.index,
                    snapshot.term,
                    m.leader_id,
                )
            self._commit_to(snapshot.index)
        self._send(m.leader_id, SnapshotResponse(self.term, self.node_id, self.commit_index))


_HANDLERS = {
    VoteRequest: RaftNode._on_vote_request,
    VoteResponse: RaftNode._on_vote_response,
    AppendEntries: RaftNode._on_append_entries,
    AppendResponse: RaftNode._on_append_response,
    InstallSnapshot: RaftNode._on_install_snapshot,
    SnapshotResponse: RaftNode._on_snapshot_response,
}
