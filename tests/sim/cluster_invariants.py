"""Safety invariants of a whole simulated cluster (metadata quorum, controller,
partition replication), checked after every step.

Named after the architecture's invariants and Kafka's RaftEventSimulationTest
checkers. Raft's own (SingleLeader, MonotonicTerm, LogMatching, ...) come from
raft_invariants.RaftInvariants; here are the replication and controller ones:

- SingleLeaderPerEpoch: per partition, at most one node (one process life) acts as
  leader per leader epoch.
- MonotonicLeaderEpoch: a replica's leader epoch never goes back (within a process
  life); batch epochs never go back along a log (memlog checks that one).
- MonotonicHW: a leader's high watermark never moves back within its epoch.
- ReplicasAgreeBelowHW: every replica's bytes below its high watermark equal the
  current leader's.
- AckedNeverLost: an acks=all record acknowledged while the ISR had at least
  min.insync.replicas members is in the log of every later leader. With the
  default flush policy a machine crash may take it, but only if every ISR member
  at acknowledgement lost it to a power loss (the fault model's KIP-966 case).
- DenseOffsets: offsets in every log are dense (memlog checks it on every write).
- ControllerSafety: at most one active controller per Raft term, and it is that
  term's leader; every node's metadata image equals the replay of its applied
  prefix (same image at the same index everywhere); an active controller's working
  image equals the log once its proposals are committed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from broker.replication.partition import Partition
from protocol.batch import parse_header
from tests.sim.memlog import LogFile, MemoryLog
from tests.sim.raft_invariants import InvariantViolation

PartitionKey = tuple[str, int]


@dataclass(slots=True)
class AckedRecord:
    key: PartitionKey
    base_offset: int
    last_offset: int
    crc: int
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    acked_at_ms: int
    excused: bool = False

    def __str__(self) -> str:
        return (
            f"{self.key[0]}-{self.key[1]}@{self.base_offset}..{self.last_offset} "
            f"(crc {self.crc:#010x}, acked by {self.leader} at epoch {self.leader_epoch}, "
            f"t={self.acked_at_ms}, isr {list(self.isr)})"
        )


def holds(log: MemoryLog, record: AckedRecord) -> bool:
    raw = log.batch_at(record.base_offset)
    if raw is None:
        return False
    header = parse_header(raw)
    return header.base_offset == record.base_offset and header.crc == record.crc


def file_holds(file: LogFile, record: AckedRecord) -> bool:
    """Whether a stopped replica's file holds the record (a whole, valid batch)."""
    for raw in file.batches:
        if len(raw) < 61:
            return False
        header = parse_header(raw)
        if header.base_offset == record.base_offset:
            return header.crc == record.crc and header.size == len(raw)
        if header.base_offset > record.base_offset:
            return False
    return False


class ClusterInvariants:
    def __init__(self, *, fsync_each_append: bool, kip966: bool = False) -> None:
        self.fsync_each_append = fsync_each_append
        self.kip966 = kip966
        self.leader_of_epoch: dict[tuple[PartitionKey, int], tuple[int, int]] = {}
        self._epoch_seen: dict[tuple[int, int, PartitionKey], int] = {}
        self._hw_seen: dict[tuple[int, int, PartitionKey, int], int] = {}
        self._leading: set[tuple[int, int, PartitionKey, int]] = set()
        self.acked: dict[PartitionKey, list[AckedRecord]] = {}
        self.power_loss_floor: dict[PartitionKey, int] = {}
        self._power_lost: dict[tuple[PartitionKey, int], set[tuple[int, int]]] = {}
        self.controller_of_term: dict[int, int] = {}
        self._image_at: dict[int, int] = {}
        self.checks = 0

    # -- partitions ------------------------------------------------------------------

    def after_partition_step(
        self, node_id: int, incarnation: int, key: PartitionKey, p: Partition, leader: Partition
    ) -> None:
        """Every per-replica invariant; `leader` is the acting leader with the highest epoch."""
        self.checks += 1
        epoch_key = (node_id, incarnation, key)
        if p.leader_epoch < self._epoch_seen.get(epoch_key, -1):
            raise InvariantViolation(
                "MonotonicLeaderEpoch",
                f"node {node_id} {key}: leader epoch {p.leader_epoch} "
                f"after {self._epoch_seen[epoch_key]}",
            )
        self._epoch_seen[epoch_key] = p.leader_epoch
        if p.leader is not None:
            self._check_leader(node_id, incarnation, key, p)
        if leader is not p and leader.leader_epoch >= p.leader_epoch:
            self._check_agreement(node_id, key, p, leader)

    def _check_leader(self, node_id: int, incarnation: int, key: PartitionKey, p: Partition):
        epoch = p.leader_epoch
        # one leadership per epoch: a restarted process must not resume an old epoch
        # (its log may differ from the one it led with)
        known = self.leader_of_epoch.setdefault((key, epoch), (node_id, incarnation))
        if known != (node_id, incarnation):
            raise InvariantViolation(
                "SingleLeaderPerEpoch",
                f"{key}: node {known[0]} (life {known[1]}) and node {node_id} (life "
                f"{incarnation}) both lead leader epoch {epoch}",
            )
        hw_key = (node_id, incarnation, key, epoch)
        hw = p.high_watermark
        if hw < self._hw_seen.get(hw_key, -1):
            raise InvariantViolation(
                "MonotonicHW",
                f"node {node_id} {key} epoch {epoch}: high watermark {hw} "
                f"after {self._hw_seen[hw_key]}",
            )
        self._hw_seen[hw_key] = hw
        if hw_key not in self._leading:
            self._leading.add(hw_key)
            self.check_leader_holds_acked(node_id, key, p.log)

    def _check_agreement(
        self, node_id: int, key: PartitionKey, p: Partition, leader: Partition
    ) -> None:
        hw = p.high_watermark
        if hw > self.power_loss_floor.get(key, hw):
            return  # data below it may be gone by power loss (default flush policy)
        mine, theirs = p.log.prefix_digest(hw), leader.log.prefix_digest(hw)
        if mine is None or mine != theirs:
            raise InvariantViolation(
                "ReplicasAgreeBelowHW",
                f"{key}: node {node_id} (epoch {p.leader_epoch}, high watermark {hw}, "
                f"log end {p.log.log_end_offset}) differs below its high watermark from "
                f"leader {leader.node_id} (epoch {leader.leader_epoch}, log end "
                f"{leader.log.log_end_offset}, high watermark {leader.high_watermark})",
            )

    # -- acknowledged records ------------------------------------------------------------

    def on_acked(self, record: AckedRecord, min_insync_replicas: int) -> None:
        if len(record.isr) >= min_insync_replicas:
            self.acked.setdefault(record.key, []).append(record)

    def check_leader_holds_acked(self, node_id: int, key: PartitionKey, log: MemoryLog) -> None:
        for record in self.acked.get(key, ()):
            if record.excused or holds(log, record):
                continue
            lost = self.lost_by_power(record, (*record.isr, node_id))
            if not self.fsync_each_append and (
                set(record.isr) <= lost or (not self.kip966 and node_id in lost)
            ):
                # every ISR member lost it to power loss; or, without KIP-966's
                # unclean-shutdown handling, the new leader did and was elected as
                # the last ISR member anyway
                record.excused = True
                continue
            raise InvariantViolation(
                "AckedNeverLost",
                f"node {node_id} leads {key} without acked record {record}; "
                f"lost by power loss on {sorted(lost)}; "
                f"its log end is {log.log_end_offset}",
            )

    def on_power_loss(
        self, node_id: int, key: PartitionKey, before: LogFile, after: LogFile
    ) -> None:
        """A machine crash: note every batch this replica lost (acked yet or not: it may
        be acknowledged later on the strength of this replica's earlier fetch) and the
        lowest offset whose bytes changed."""
        changed = _first_difference(before, after)
        if changed is None:
            return
        self.power_loss_floor[key] = min(self.power_loss_floor.get(key, changed), changed)
        kept = {(h.base_offset, h.crc) for h in _whole_headers(after)}
        lost = self._power_lost.setdefault((key, node_id), set())
        lost.update((h.base_offset, h.crc) for h in _whole_headers(before))
        lost.difference_update(kept)

    def lost_by_power(self, record: AckedRecord, nodes: tuple[int, ...]) -> set[int]:
        """The nodes among `nodes` that lost this record's batch to a power loss."""
        batch = (record.base_offset, record.crc)
        return {n for n in nodes if batch in self._power_lost.get((record.key, n), ())}

    # -- controller --------------------------------------------------------------------

    def on_controller_active(self, node_id: int, term: int, is_raft_leader: bool) -> None:
        if not is_raft_leader:
            raise InvariantViolation(
                "ControllerSafety",
                f"node {node_id} activates a controller in term {term} without leading it",
            )
        known = self.controller_of_term.setdefault(term, node_id)
        if known != node_id:
            raise InvariantViolation(
                "ControllerSafety", f"nodes {known} and {node_id} both active in term {term}"
            )

    def on_image_applied(self, node_id: int, index: int, image_bytes: bytes) -> None:
        digest = zlib.crc32(image_bytes)
        known = self._image_at.setdefault(index, digest)
        if known != digest:
            raise InvariantViolation(
                "ControllerSafety",
                f"node {node_id}'s metadata image at index {index} differs from another "
                f"node's at the same index",
            )


def _first_difference(before: LogFile, after: LogFile) -> int | None:
    """The lowest offset whose bytes a crash changed (lost, torn or resurrected by an
    undone truncation); None if recovery will find the same log."""
    if before.start_offset != after.start_offset:
        return min(before.start_offset, after.start_offset)
    end = before.start_offset
    for old, new in zip(before.batches, after.batches, strict=False):
        if old != new or len(old) < 61:
            return end
        end = parse_header(old).last_offset + 1
    longer = before.batches if len(before.batches) > len(after.batches) else after.batches
    return end if len(before.batches) != len(after.batches) and longer else None


def _whole_headers(file: LogFile) -> list:
    """Headers of the whole batches recovery will keep from a file."""
    out = []
    for raw in file.batches:
        if len(raw) < 61:
            break
        header = parse_header(raw)
        if header.size != len(raw):
            break
        out.append(header)
    return out
