"""One partition replica on this broker: its log, leader epoch, high watermark and
idempotent-producer state (Kafka's Partition, leader side).

Produce validation happens here, before anything touches the log: every batch
is checked (framing, magic, CRC, size, producer sequence) and the request's
batches are appended only if all of them pass, so a bad batch never leaves a
partial write behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from broker.log.log import Log
from broker.replication.producer_state import ProducerStateManager, SequenceCheck
from protocol.batch import (
    CorruptBatchError,
    InvalidBatchError,
    iter_batches,
)
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppendResult:
    error: ErrorCode = ErrorCode.NONE
    base_offset: int = -1
    last_offset: int = -1
    log_start_offset: int = -1
    message: str | None = None


@dataclass(frozen=True, slots=True)
class FetchData:
    error: ErrorCode
    high_watermark: int
    log_start_offset: int
    records: bytes


class Partition:
    def __init__(
        self,
        topic: str,
        index: int,
        log_: Log,
        leader_epoch: int,
        producers: ProducerStateManager,
        *,
        max_message_bytes: int,
    ) -> None:
        self.topic = topic
        self.index = index
        self.log = log_
        self.leader_epoch = leader_epoch
        self.producers = producers
        self.max_message_bytes = max_message_bytes

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.index}"

    @property
    def high_watermark(self) -> int:
        """Single replica: everything appended is committed."""
        return self.log.log_end_offset

    def append_as_leader(self, records: bytes | None, now_ms: int) -> AppendResult:
        """Validate a Produce request's records and append them, all or nothing."""
        if not records:
            return AppendResult(ErrorCode.CORRUPT_MESSAGE, message="no record batches")
        try:
            headers = [h for _, h in iter_batches(records, max_batch_bytes=None)]
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
                return AppendResult(
                    ErrorCode.INVALID_RECORD, message="transactions are not supported"
                )
        if len(headers) == 1:
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
        elif any(h.producer_id >= 0 for h in headers):
            return AppendResult(
                ErrorCode.INVALID_RECORD,
                message="an idempotent producer sends one batch per partition per request",
            )
        info = self.log.append_as_leader(records, self.leader_epoch, now_ms)
        offset = info.first_offset
        for header in headers:
            self.producers.record(header, offset)
            offset += header.last_offset_delta + 1
        return AppendResult(
            base_offset=info.first_offset,
            last_offset=info.last_offset,
            log_start_offset=self.log.log_start_offset,
        )
