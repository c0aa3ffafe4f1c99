"""One partition replica on this broker: its log, its role, its producers.

The role is leader (a LeaderState decides ISR, high watermark and acks) or
follower (a FollowerState tracks the leader, the fetch phase and the high
watermark the leader reported). The partition reads and writes its log only
through the narrow `PartitionLog` interface, so the simulator can give it a
disk that loses unsynced writes.

Produce validation happens before anything touches the log: every batch is
checked (framing, magic, CRC, size, producer sequence) and the request's
batches are appended only if all pass, so a bad batch never leaves a partial
write behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from broker.replication.follower import FollowerState, Phase, truncation_offset
from broker.replication.leader import Completion, IsrProposal, LeaderState
from broker.replication.producer_state import ProducerStateManager, SequenceCheck
from protocol.batch import CorruptBatchError, InvalidBatchError, iter_batches
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)


class PartitionLog(Protocol):
    """What a partition needs from its log (broker/log/log.py's Log has it)."""

    log_start_offset: int

    @property
    def log_end_offset(self) -> int: ...

    @property
    def latest_epoch(self) -> int: ...

    def append_as_leader(self, records: bytes, leader_epoch: int, now_ms: int): ...

    def append_as_follower(self, records: bytes, now_ms: int): ...

    def truncate_to(self, offset: int, now_ms: int) -> bool: ...

    def truncate_fully_and_start_at(self, offset: int, now_ms: int) -> None: ...

    def read(self, start_offset: int, max_bytes: int, *, max_offset=None, min_one=True): ...


@dataclass(frozen=True, slots=True)
class AppendResult:
    error: ErrorCode = ErrorCode.NONE
    base_offset: int = -1
    last_offset: int = -1
    log_start_offset: int = -1
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """The partition's state as the metadata image gives it."""

    leader: int
    leader_epoch: int
    partition_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class Partition:
    def __init__(
        self,
        topic: str,
        index: int,
        log_: PartitionLog,
        producers: ProducerStateManager,
        *,
        node_id: int,
        max_message_bytes: int,
        min_insync_replicas: int,
        lag_time_max_ms: int,
        high_watermark: int = 0,
    ) -> None:
        self.topic = topic
        self.index = index
        self.log = log_
        self.producers = producers
        self.node_id = node_id
        self.max_message_bytes = max_message_bytes
        self.min_insync_replicas = min_insync_replicas
        self.lag_time_max_ms = lag_time_max_ms
        self.leader: LeaderState | None = None
        self.follower: FollowerState | None = None
        self.leader_epoch = -1
        self.assignment: Assignment | None = None
        self._follower_hw = min(high_watermark, log_.log_end_offset)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.index}"

    @property
    def is_leader(self) -> bool:
        return self.leader is not None

    @property
    def high_watermark(self) -> int:
        if self.leader is not None:
            return self.leader.high_watermark
        if self.follower is not None:
            return self.follower.high_watermark
        return self._follower_hw

    # -- role changes ---------------------------------------------------------------

    def become(self, assignment: Assignment, now_ms: int) -> list[Completion]:
        """Apply the metadata image's view; returns produces failed by losing leadership."""
        previous = self.assignment
        self.assignment = assignment
        if assignment.leader == self.node_id:
            same_epoch = previous and previous.leader_epoch == assignment.leader_epoch
            if self.leader is not None and same_epoch:
                if assignment.partition_epoch <= previous.partition_epoch:
                    return []  # the image changed elsewhere: keep any pending ISR change
                self.leader.on_replicas_changed(assignment.replicas)
                self.leader.on_isr_committed(frozenset(assignment.isr), assignment.partition_epoch)
                self.leader.advance_high_watermark()  # a shrink may let it move
                return self.leader.completions(now_ms)
            failed = self.leader.resign() if self.leader is not None else []
            self._make_leader(assignment, now_ms)
            return failed
        done = self.leader.resign() if self.leader is not None else []
        if self.leader is not None:
            self._follower_hw = self.leader.high_watermark
        self.leader = None
        self.leader_epoch = assignment.leader_epoch
        if self.follower is None or self.follower.leader_epoch != assignment.leader_epoch:
            hw = self.high_watermark if self.follower is None else self.follower.high_watermark
            self.follower = FollowerState(assignment.leader, assignment.leader_epoch, hw)
            log.info(
                "%s follows broker %d at leader epoch %d (log end %d, high watermark %d)",
                self.name,
                assignment.leader,
                assignment.leader_epoch,
                self.log.log_end_offset,
                hw,
            )
        return done

    def _make_leader(self, assignment: Assignment, now_ms: int) -> None:
        hw = self.high_watermark
        leo = self.log.log_end_offset
        self.log.epoch_cache.assign(assignment.leader_epoch, leo)
        self.follower = None
        self.leader_epoch = assignment.leader_epoch
        self.leader = LeaderState(
            node_id=self.node_id,
            leader_epoch=assignment.leader_epoch,
            partition_epoch=assignment.partition_epoch,
            replicas=assignment.replicas,
            isr=frozenset(assignment.isr),
            high_watermark=min(hw, leo),
            log_end_offset=leo,
            epoch_start_offset=leo,
            lag_time_max_ms=self.lag_time_max_ms,
            min_insync_replicas=self.min_insync_replicas,
        )
        self.leader.begin(now_ms)
        self.leader.advance_high_watermark()
        log.info(
            "%s leads at epoch %d: replicas %s, isr %s, log end %d, high watermark %d",
            self.name,
            assignment.leader_epoch,
            list(assignment.replicas),
            sorted(assignment.isr),
            leo,
            self.leader.high_watermark,
        )

    # -- leader side ----------------------------------------------------------------

    def append_as_leader(self, records: bytes | None, now_ms: int, acks: int = 1) -> AppendResult:
        """Validate a Produce request's records and append them, all or nothing."""
        if self.leader is None:
            return AppendResult(ErrorCode.NOT_LEADER_OR_FOLLOWER, message="not the leader")
        if acks == -1 and not self.leader.can_accept_acks_all():
            return AppendResult(
                ErrorCode.NOT_ENOUGH_REPLICAS,
                message=f"ISR {sorted(self.leader.isr)} is smaller than "
                f"min.insync.replicas {self.leader.min_insync_replicas}",
            )
        checked = self._check_batches(records)
        if isinstance(checked, AppendResult):
            return checked
        info = self.log.append_as_leader(records, self.leader_epoch, now_ms)
        offset = info.first_offset
        for header in checked:
            self.producers.record(header, offset)
            offset += header.last_offset_delta + 1
        self.leader.on_local_append(self.log.log_end_offset)
        self.leader.advance_high_watermark()
        return AppendResult(
            base_offset=info.first_offset,
            last_offset=info.last_offset,
            log_start_offset=self.log.log_start_offset,
        )

    def _check_batches(self, records: bytes | None) -> list | AppendResult:
        if not records:
            return AppendResult(ErrorCode.CORRUPT_MESSAGE, message="no record batches")
        try:
            headers = [h for _, h in iter_batches(records)]
        except CorruptBatchError as exc:
            return AppendResult(ErrorCode.CORRUPT_MESSAGE, message=str(exc))
        except InvalidBatchError as exc:
            return AppendResult(ErrorCode.INVALID_RECORD, message=str(exc))
        for header in headers:
            if header.size > self.max_message_bytes:
                return AppendResult(
                    ErrorCode.MESSAGE_TOO_LARGE,
                    message=f"batch of {header.size} bytes exceeds max.message.bytes "
                    f"{self.max_message_bytes}",
                )
            if header.is_transactional or header.is_control:
                return AppendResult(ErrorCode.INVALID_RECORD, message="no transactions")
        if len(headers) > 1 and any(h.producer_id >= 0 for h in headers):
            return AppendResult(
                ErrorCode.INVALID_RECORD,
                message="an idempotent producer sends one batch per partition per request",
            )
        if len(headers) == 1:
            return self._check_sequence(headers)
        return headers

    def _check_sequence(self, headers: list) -> list | AppendResult:
        verdict = self.producers.check(headers[0])
        if verdict.check is SequenceCheck.DUPLICATE:
            batch = verdict.duplicate_of
            return AppendResult(
                base_offset=batch.first_offset,
                last_offset=batch.last_offset,
                log_start_offset=self.log.log_start_offset,
            )
        if verdict.check is SequenceCheck.OUT_OF_ORDER:
            return AppendResult(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message=verdict.detail)
        if verdict.check is SequenceCheck.FENCED_EPOCH:
            return AppendResult(ErrorCode.INVALID_PRODUCER_EPOCH, message=verdict.detail)
        return headers

    def on_follower_fetch(self, replica_id: int, fetch_offset: int, now_ms: int) -> bool:
        """A follower fetched from fetch_offset; True if the high watermark moved."""
        assert self.leader is not None
        self.leader.on_follower_fetch(replica_id, fetch_offset, now_ms)
        return self.leader.advance_high_watermark()

    def isr_proposal(
        self, now_ms: int, eligible: frozenset[int] | None = None
    ) -> IsrProposal | None:
        return self.leader.isr_change(now_ms, eligible) if self.leader is not None else None

    # -- follower side --------------------------------------------------------------

    @property
    def needs_truncation(self) -> bool:
        return self.follower is not None and self.follower.phase is Phase.TRUNCATING

    def truncate_after_epoch_check(
        self, leader_epoch: int, leader_end_offset: int, now_ms: int
    ) -> int:
        """Cut the divergent suffix the leader's OffsetForLeaderEpoch answer reveals."""
        assert self.follower is not None
        target = truncation_offset(
            _EpochView(self.log),
            self.log.latest_epoch,
            leader_epoch,
            leader_end_offset,
            self.follower.high_watermark,
        )
        if target < self.log.log_end_offset:
            log.warning(
                "%s truncating from %d to %d (leader epoch %d ends at %d)",
                self.name,
                self.log.log_end_offset,
                target,
                leader_epoch,
                leader_end_offset,
            )
            self.truncate_to(target, now_ms)
        self.follower.phase = Phase.FETCHING
        return target

    def truncate_to(self, offset: int, now_ms: int) -> None:
        self.log.truncate_to(offset, now_ms)
        self.producers.truncate_to(self.log.log_end_offset)
        if self.follower is not None:
            self.follower.high_watermark = min(
                self.follower.high_watermark, self.log.log_end_offset
            )

    def append_as_follower(self, records: bytes, leader_hw: int, now_ms: int) -> None:
        """Append the leader's bytes unchanged and take its high watermark."""
        assert self.follower is not None
        if records:
            start = self.log.log_end_offset
            self.log.append_as_follower(records, now_ms)
            for _, header in iter_batches(records):
                if header.last_offset >= start:
                    self.producers.record(header, header.base_offset)
        self.follower.on_leader_hw(leader_hw, self.log.log_end_offset)


class _EpochView:
    """Adapts a Log to follower.EpochView."""

    def __init__(self, log_: PartitionLog) -> None:
        self._log = log_

    @property
    def log_end_offset(self) -> int:
        return self._log.log_end_offset

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        return self._log.epoch_cache.end_offset_for(epoch, log_end_offset)
