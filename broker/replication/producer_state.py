"""Idempotent-producer bookkeeping for one partition (Kafka's ProducerStateManager).

Per producer id the leader remembers the epoch and the last few batches it
appended (first/last sequence, first/last offset). A new batch is then:

- a duplicate of a remembered batch: answered with the original offsets,
  nothing appended (the client retried after a lost response);
- the next in sequence: appended;
- anything else: OUT_OF_ORDER_SEQUENCE_NUMBER, or INVALID_PRODUCER_EPOCH for
  an epoch older than the one seen.

Sans-IO: the state is rebuilt after a restart by replaying batch headers from
the log (the headers carry producer id, epoch and sequences), starting from
the last snapshot. Memory is bounded: BATCHES_RETAINED batches per producer
and producers_max producers per partition (the least recently used go first).
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from protocol.batch import NO_PRODUCER_ID, NO_SEQUENCE, BatchHeader

BATCHES_RETAINED = 5  # Kafka's NUM_BATCHES_TO_RETAIN; clients keep <= 5 in flight
NO_PRODUCER_EPOCH = -1
INT32_MAX = 0x7FFFFFFF


class SequenceCheck(enum.Enum):
    APPEND = "append"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    FENCED_EPOCH = "fenced_epoch"


@dataclass(frozen=True, slots=True)
class BatchRecord:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp_ms: int


@dataclass(slots=True)
class ProducerEntry:
    epoch: int = NO_PRODUCER_EPOCH
    batches: deque[BatchRecord] = field(default_factory=lambda: deque(maxlen=BATCHES_RETAINED))
    last_timestamp_ms: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE


@dataclass(frozen=True, slots=True)
class Verdict:
    check: SequenceCheck
    duplicate_of: BatchRecord | None = None
    detail: str = ""


def _in_sequence(last_seq: int, first_seq: int) -> bool:
    return first_seq == last_seq + 1 or (first_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    """Sequence and epoch state of every idempotent producer on one partition."""

    def __init__(self, producers_max: int = 10000) -> None:
        assert producers_max > 0
        self.producers_max = producers_max
        self._producers: OrderedDict[int, ProducerEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._producers)

    def entry(self, producer_id: int) -> ProducerEntry | None:
        return self._producers.get(producer_id)

    def check(self, header: BatchHeader) -> Verdict:
        """Classify a produced batch before it is appended; changes nothing."""
        if header.producer_id == NO_PRODUCER_ID:
            return Verdict(SequenceCheck.APPEND)
        entry = self._producers.get(header.producer_id)
        if entry is None:
            return Verdict(SequenceCheck.APPEND)
        if header.producer_epoch < entry.epoch:
            return Verdict(
                SequenceCheck.FENCED_EPOCH,
                detail=f"epoch {header.producer_epoch} is older than {entry.epoch}",
            )
        first_seq, last_seq = header.base_sequence, header.last_sequence
        if header.producer_epoch == entry.epoch:
            for batch in entry.batches:
                if batch.first_seq == first_seq and batch.last_seq == last_seq:
                    return Verdict(SequenceCheck.DUPLICATE, duplicate_of=batch)
        if header.producer_epoch != entry.epoch:
            if first_seq != 0 and entry.epoch != NO_PRODUCER_EPOCH:
                return Verdict(
                    SequenceCheck.OUT_OF_ORDER,
                    detail=f"new epoch {header.producer_epoch} must start at sequence 0, "
                    f"got {first_seq}",
                )
            return Verdict(SequenceCheck.APPEND)
        if entry.last_seq == NO_SEQUENCE and first_seq != 0:
            return Verdict(SequenceCheck.OUT_OF_ORDER, detail=f"expected 0, got {first_seq}")
        if entry.last_seq != NO_SEQUENCE and not _in_sequence(entry.last_seq, first_seq):
            return Verdict(
                SequenceCheck.OUT_OF_ORDER,
                detail=f"expected {(entry.last_seq + 1) & INT32_MAX}, got {first_seq}",
            )
        return Verdict(SequenceCheck.APPEND)

    def record(self, header: BatchHeader, first_offset: int) -> None:
        """Remember a batch appended at first_offset (leader append or log replay)."""
        if header.producer_id == NO_PRODUCER_ID:
            return
        entry = self._producers.pop(header.producer_id, None) or ProducerEntry()
        self._producers[header.producer_id] = entry  # most recently used last
        if header.producer_epoch != entry.epoch:
            entry.epoch = header.producer_epoch
            entry.batches.clear()
        if header.base_sequence != NO_SEQUENCE:
            entry.batches.append(
                BatchRecord(
                    header.base_sequence,
                    header.last_sequence,
                    first_offset,
                    first_offset + header.last_offset_delta,
                    header.max_timestamp,
                )
            )
        entry.last_timestamp_ms = max(entry.last_timestamp_ms, header.max_timestamp)
        while len(self._producers) > self.producers_max:
            self._producers.popitem(last=False)

    def truncate_to(self, offset: int) -> None:
        """Forget batches at or beyond offset (the log was truncated there)."""
        for pid in list(self._producers):
            entry = self._producers[pid]
            kept = [b for b in entry.batches if b.last_offset < offset]
            if len(kept) != len(entry.batches):
                entry.batches.clear()
                entry.batches.extend(kept)
                if not kept:
                    del self._producers[pid]

    def to_snapshot(self) -> list[dict]:
        """Plain data for a snapshot file (JSON)."""
        return [
            {
                "producer_id": pid,
                "epoch": e.epoch,
                "last_timestamp_ms": e.last_timestamp_ms,
                "batches": [
                    [b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp_ms]
                    for b in e.batches
                ],
            }
            for pid, e in self._producers.items()
        ]

    def load_snapshot(self, entries: list[dict]) -> None:
        self._producers.clear()
        for item in entries:
            entry = ProducerEntry(epoch=int(item["epoch"]))
            entry.last_timestamp_ms = int(item["last_timestamp_ms"])
            entry.batches.extend(BatchRecord(*map(int, b)) for b in item["batches"])
            self._producers[int(item["producer_id"])] = entry
