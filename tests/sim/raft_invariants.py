"""Safety invariants of a Raft cluster, checked by the simulator after every step.

Named after Kafka's RaftEventSimulationTest checkers. Each records what the
cluster has ever said (leaders per term, committed entries, log records) and
raises InvariantViolation the moment any node contradicts it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from broker.raft import AppendOps, Entry, RaftLog, RaftNode, Role, Snapshot


class InvariantViolation(AssertionError):
    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant


@dataclass(slots=True)
class StateMachine:
    """A node's applied state: a CRC chain over every applied (index, term, data)."""

    applied_index: int = 0
    digest: int = 0

    def apply(self, entry: Entry) -> None:
        assert entry.index == self.applied_index + 1, (entry.index, self.applied_index)
        head = f"{entry.index}:{entry.term}:".encode()
        self.digest = zlib.crc32(entry.data, zlib.crc32(head, self.digest))
        self.applied_index = entry.index

    def image(self) -> bytes:
        return f"{self.applied_index}:{self.digest}".encode()

    @classmethod
    def load(cls, snapshot: Snapshot) -> StateMachine:
        index, digest = snapshot.data.decode().split(":")
        assert int(index) == snapshot.index
        return cls(applied_index=snapshot.index, digest=int(digest))


class RaftInvariants:
    """SingleLeader, MonotonicTerm, MonotonicCommit, LogMatching,
    LeaderCompleteness (NoCommittedLost) and StateMachineSafety, on voters and
    learners alike; for learners also LearnerPassive (never a candidate, never a
    vote) and LearnerSafety (a learner applies, or restores, only what a voter
    already applied: it learns commits, it never makes them)."""

    def __init__(self, *, durable_terms: bool, learners: tuple[int, ...] = ()) -> None:
        # with fsync on every persist a node's term survives any crash; without it a
        # machine crash may take it back, so terms are then compared per incarnation
        self._durable_terms = durable_terms
        self._learners = frozenset(learners)
        self.leader_of_term: dict[int, int] = {}
        self._term_seen: dict[tuple[int, int], int] = {}
        self._commit_seen: dict[tuple[int, int], int] = {}
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        self._digest_at: dict[int, int] = {}
        self._record: dict[tuple[int, int], tuple[bytes, int]] = {}  # (i, t) -> data, prev term
        self.checks = 0

    def after_step(self, node_id: int, incarnation: int, raft: RaftNode) -> None:
        """SingleLeader, MonotonicTerm, MonotonicCommit, LearnerPassive;
        LeaderCompleteness on a new leader."""
        self.checks += 1
        learner = node_id in self._learners
        if (raft.role is Role.LEARNER) != learner or (learner and raft.voted_for is not None):
            raise InvariantViolation(
                "LearnerPassive",
                f"node {node_id} (learner: {learner}) is {raft.role.value}, "
                f"voted for {raft.voted_for} in term {raft.term}",
            )
        term_key = (node_id, 0 if self._durable_terms else incarnation)
        if raft.term < self._term_seen.get(term_key, 0):
            raise InvariantViolation(
                "MonotonicTerm",
                f"node {node_id} at term {raft.term} after {self._term_seen[term_key]}",
            )
        self._term_seen[term_key] = raft.term
        commit_key = (node_id, incarnation)
        if raft.commit_index < self._commit_seen.get(commit_key, 0):
            raise InvariantViolation(
                "MonotonicCommit",
                f"node {node_id} commit {raft.commit_index} after {self._commit_seen[commit_key]}",
            )
        self._commit_seen[commit_key] = raft.commit_index
        if raft.role is Role.LEADER:
            leader = self.leader_of_term.get(raft.term)
            if leader is None:
                self.leader_of_term[raft.term] = node_id
                self.check_complete(node_id, raft.raft_log, "LeaderCompleteness")
            elif leader != node_id:
                raise InvariantViolation(
                    "SingleLeader", f"nodes {leader} and {node_id} both lead term {raft.term}"
                )

    def check_complete(self, node_id: int, log: RaftLog, invariant: str) -> None:
        """Every entry ever reported committed is in this log (or under its snapshot)."""
        snapshot = log.snapshot()
        for index, (term, _) in self.committed.items():
            if index < snapshot.index:
                continue
            if log.term_at(index) != term:
                raise InvariantViolation(
                    invariant,
                    f"node {node_id} lacks committed entry {index} (term {term}); "
                    f"has term {log.term_at(index)}",
                )

    def on_append(self, node_id: int, before: RaftLog, operation: AppendOps) -> None:
        """LogMatching: one (index, term) means one record and one predecessor term."""
        if not operation.entries:
            return
        prev_term = before.term_at(operation.entries[0].index - 1)
        for entry in operation.entries:
            known = self._record.setdefault((entry.index, entry.term), (entry.data, prev_term))
            if known != (entry.data, prev_term):
                raise InvariantViolation(
                    "LogMatching",
                    f"node {node_id} writes ({entry.index}, term {entry.term}) = "
                    f"{(entry.data, prev_term)}, elsewhere {known}",
                )
            prev_term = entry.term

    def on_apply(self, node_id: int, entry: Entry, machine: StateMachine) -> None:
        """StateMachineSafety: every node applies the same entry at each index."""
        if node_id in self._learners and entry.index not in self.committed:
            raise InvariantViolation(
                "LearnerSafety", f"learner {node_id} applies {entry} before any voter"
            )
        known = self.committed.setdefault(entry.index, (entry.term, entry.data))
        if known != (entry.term, entry.data):
            raise InvariantViolation(
                "StateMachineSafety",
                f"node {node_id} applies {entry} but {entry.index} committed as {known}",
            )
        self._check_digest(node_id, entry.index, machine.digest)

    def on_restore(self, node_id: int, machine: StateMachine) -> None:
        if node_id in self._learners and machine.applied_index not in self._digest_at:
            raise InvariantViolation(
                "LearnerSafety",
                f"learner {node_id} restores a state at {machine.applied_index} no voter had",
            )
        self._check_digest(node_id, machine.applied_index, machine.digest)

    def _check_digest(self, node_id: int, index: int, digest: int) -> None:
        known = self._digest_at.setdefault(index, digest)
        if known != digest:
            raise InvariantViolation(
                "StateMachineSafety", f"node {node_id} state at {index} differs from another's"
            )
