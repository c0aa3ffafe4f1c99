"""An in-memory partition log for the cluster simulator (the `PartitionLog` of
broker/replication/partition.py), with Kafka's crash semantics.

What a partition writes goes through a `SimDisk`: record batches (appends,
truncations) are OS writes, synced on every append under the flush-every-append
policy and only when the simulated OS writes back under the default policy; a
machine crash keeps the synced writes, a random prefix of the rest and possibly a
torn last append. The leader-epoch checkpoint is written atomically and fsynced
on every change (as broker/log/epoch_cache.py does), so it survives every crash.

A restart rebuilds the log the way broker/log/log.py recovers one: every batch
is re-validated (framing, CRC, dense offsets), a torn or corrupt tail is cut,
epochs are re-derived from the batch headers (the recovery point is the start of
the log: one segment), and checkpoint entries beyond the log end are dropped.
"""

from __future__ import annotations

import bisect
import random
import zlib
from dataclasses import dataclass, field

from broker.log.epoch_cache import epoch_end_offset
from broker.log.log import UnexpectedAppendOffset
from protocol.batch import (
    CorruptBatchError,
    InvalidBatchError,
    iter_batches,
    parse_header,
    set_base_offset_and_epoch,
    validate_batch,
)
from tests.sim.disk import SimDisk
from tests.sim.raft_invariants import InvariantViolation

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


# -- what is on disk ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Append:
    batches: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Truncate:
    """Drop every batch ending at or after `offset`."""

    offset: int


@dataclass(frozen=True, slots=True)
class Reset:
    """Drop everything; the log restarts empty at `offset`."""

    offset: int


@dataclass(slots=True)
class LogFile:
    """The bytes of a partition's segments, as the OS holds them (batches in order;
    the last may be torn)."""

    start_offset: int = 0
    batches: list[bytes] = field(default_factory=list)

    def apply(self, operation: Append | Truncate | Reset) -> None:
        match operation:
            case Append(batches=batches):
                self.batches.extend(batches)
            case Truncate(offset=offset):
                keep = 0
                for batch in self.batches:
                    if len(batch) < 61 or parse_header(batch).last_offset >= offset:
                        break
                    keep += 1
                del self.batches[keep:]
            case Reset(offset=offset):
                self.start_offset = offset
                self.batches = []

    @classmethod
    def copy_of(cls, other: LogFile) -> LogFile:
        return cls(other.start_offset, list(other.batches))


def tear_append(operation: object, rng: random.Random) -> object | None:
    """A torn append keeps whole batches and then part of one (recovery cuts it)."""
    if not isinstance(operation, Append) or not operation.batches:
        return None
    whole = rng.randrange(len(operation.batches))
    partial = operation.batches[whole]
    return Append((*operation.batches[:whole], partial[: rng.randrange(1, len(partial))]))


@dataclass(slots=True)
class PartitionDisk:
    """One replica's durable state: its log file and its leader-epoch checkpoint."""

    file: SimDisk[LogFile] = field(
        default_factory=lambda: SimDisk(LogFile, LogFile.copy_of, tear_append)
    )
    epoch_checkpoint: list[tuple[int, int]] = field(default_factory=list)
    high_watermark_checkpoint: int = 0


# -- the leader-epoch cache ----------------------------------------------------------------


class MemoryEpochCache:
    """broker/log/epoch_cache.LeaderEpochCache without files: the same assign,
    end_offset_for and truncation semantics; every change goes to the checkpoint."""

    def __init__(self, disk: PartitionDisk) -> None:
        self._disk = disk
        self._epochs = [e for e, _ in disk.epoch_checkpoint]
        self._offsets = [o for _, o in disk.epoch_checkpoint]

    @property
    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._epochs, self._offsets, strict=True))

    @property
    def latest_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int, *, flush: bool = True) -> bool:
        assert epoch >= 0 and start_offset >= 0, (epoch, start_offset)
        if self._epochs and epoch <= self._epochs[-1]:
            return False
        cut = bisect.bisect_left(self._offsets, start_offset)
        del self._epochs[cut:], self._offsets[cut:]
        self._epochs.append(epoch)
        self._offsets.append(start_offset)
        if flush:
            self.flush()
        return True

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        return epoch_end_offset(self._epochs, self._offsets, requested_epoch, log_end_offset)

    def truncate_from_end(self, end_offset: int, *, flush: bool = True) -> None:
        cut = bisect.bisect_left(self._offsets, end_offset)
        del self._epochs[cut:], self._offsets[cut:]
        if flush:
            self.flush()

    def clear(self) -> None:
        self._epochs.clear()
        self._offsets.clear()
        self.flush()

    def flush(self) -> None:
        self._disk.epoch_checkpoint = self.entries


# -- the log -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemAppendInfo:
    first_offset: int
    last_offset: int


@dataclass(frozen=True, slots=True)
class MemReadResult:
    data: bytes


class MemoryLog:
    """A partition log held as whole batches, written through a PartitionDisk."""

    def __init__(self, disk: PartitionDisk, *, fsync_each_append: bool, name: str = "") -> None:
        """Open (recover) the log from what the disk holds now."""
        self.disk = disk
        self.name = name
        self.fsync_each_append = fsync_each_append
        self.epoch_cache = MemoryEpochCache(disk)
        stored = disk.file.current
        self.log_start_offset = stored.start_offset
        self._batches: list[bytes] = []
        self._ends: list[int] = []  # last offset + 1 of each batch
        self._digests: list[int] = []  # CRC chain over every batch up to each one
        self.recovered_bytes_cut = 0
        # Log._recover: the epochs of every batch from the recovery point on (here: the
        # one segment, from its start) are re-derived from the batch headers, since the
        # checkpoint may describe writes (a truncation, appends) that power loss undid
        self.epoch_cache.truncate_from_end(self.log_start_offset, flush=False)
        for raw in stored.batches:
            try:
                header = validate_batch(raw)
            except (CorruptBatchError, InvalidBatchError):
                break
            if header.size != len(raw) or header.base_offset != self.log_end_offset:
                break
            self._push(raw)
            if header.partition_leader_epoch > self.epoch_cache.latest_epoch:
                self.epoch_cache.assign(
                    header.partition_leader_epoch, header.base_offset, flush=False
                )
        if len(self._batches) < len(stored.batches):
            self.recovered_bytes_cut = sum(len(b) for b in stored.batches[len(self._batches) :])
            disk.file.write(Truncate(self.log_end_offset), sync=True)
        self.epoch_cache.truncate_from_end(self.log_end_offset)

    # -- reading -----------------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        return self._ends[-1] if self._ends else self.log_start_offset

    @property
    def latest_epoch(self) -> int:
        return self.epoch_cache.latest_epoch

    @property
    def batches(self) -> tuple[bytes, ...]:
        return tuple(self._batches)

    def read(
        self,
        start_offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one: bool = True,
    ) -> MemReadResult:
        """Whole batches from the one holding start_offset, as Log.read returns them."""
        if not self.log_start_offset <= start_offset <= self.log_end_offset:
            raise ValueError(f"{self.name}: offset {start_offset} out of range")
        i = bisect.bisect_right(self._ends, start_offset)
        out: list[bytes] = []
        size = 0
        while i < len(self._batches):
            if max_offset is not None and self._ends[i] > max_offset:
                break
            raw = self._batches[i]
            if size + len(raw) > max_bytes and not (min_one and not out):
                break
            out.append(raw)
            size += len(raw)
            i += 1
        return MemReadResult(b"".join(out))

    def batch_at(self, offset: int) -> bytes | None:
        """The batch holding `offset`, if any."""
        i = bisect.bisect_right(self._ends, offset)
        if i >= len(self._batches) or offset < self.log_start_offset:
            return None
        return self._batches[i]

    def prefix_digest(self, offset: int) -> int | None:
        """The CRC chain of every batch below `offset`; None unless a batch ends there."""
        if offset == self.log_start_offset:
            return 0
        i = bisect.bisect_left(self._ends, offset)
        if i >= len(self._ends) or self._ends[i] != offset:
            return None
        return self._digests[i]

    # -- writing -----------------------------------------------------------------

    def append_as_leader(self, records: bytes, leader_epoch: int, now_ms: int) -> MemAppendInfo:
        assert leader_epoch >= 0
        first = offset = self.log_end_offset
        out = []
        for pos, header in iter_batches(records):
            batch = bytearray(records[pos : pos + header.size])
            set_base_offset_and_epoch(batch, 0, offset, leader_epoch)
            out.append(bytes(batch))
            offset += header.last_offset_delta + 1
        self._write(out)
        if out and leader_epoch > self.epoch_cache.latest_epoch:
            self.epoch_cache.assign(leader_epoch, first)
        return MemAppendInfo(first, offset - 1)

    def append_as_follower(self, records: bytes, now_ms: int) -> MemAppendInfo:
        first = expected = self.log_end_offset
        out, epochs = [], []
        for pos, header in iter_batches(records):
            if header.base_offset != expected:
                raise UnexpectedAppendOffset(
                    f"{self.name}: batch at offset {header.base_offset}, expected {expected}"
                )
            out.append(bytes(records[pos : pos + header.size]))
            epochs.append((header.partition_leader_epoch, header.base_offset))
            expected = header.last_offset + 1
        self._write(out)
        for epoch, base in epochs:
            if epoch >= 0 and epoch > self.epoch_cache.latest_epoch:
                self.epoch_cache.assign(epoch, base)
        return MemAppendInfo(first, expected - 1)

    def truncate_to(self, offset: int, now_ms: int) -> bool:
        if offset < 0:
            raise ValueError(offset)
        if offset >= self.log_end_offset:
            return False
        if offset < self.log_start_offset:
            self.truncate_fully_and_start_at(offset, now_ms)
            return True
        keep = bisect.bisect_right(self._ends, offset)
        del self._batches[keep:], self._ends[keep:], self._digests[keep:]
        self.disk.file.write(Truncate(offset), sync=self.fsync_each_append)
        self.epoch_cache.truncate_from_end(self.log_end_offset)
        return True

    def truncate_fully_and_start_at(self, offset: int, now_ms: int) -> None:
        self._batches, self._ends, self._digests = [], [], []
        self.log_start_offset = offset
        self.disk.file.write(Reset(offset), sync=self.fsync_each_append)
        self.epoch_cache.clear()

    def _write(self, batches: list[bytes]) -> None:
        for raw in batches:
            self._push(raw)
        if batches:
            self.disk.file.write(Append(tuple(batches)), sync=self.fsync_each_append)

    def _push(self, raw: bytes) -> None:
        """Add one whole batch; DenseOffsets and MonotonicLeaderEpoch hold in every log."""
        header = parse_header(raw)
        if header.base_offset != self.log_end_offset:
            raise InvariantViolation(
                "DenseOffsets",
                f"{self.name}: batch at {header.base_offset} after log end {self.log_end_offset}",
            )
        if self._batches:
            previous = parse_header(self._batches[-1]).partition_leader_epoch
            if header.partition_leader_epoch < previous:
                raise InvariantViolation(
                    "MonotonicLeaderEpoch",
                    f"{self.name}: batch at {header.base_offset} has leader epoch "
                    f"{header.partition_leader_epoch} after {previous}",
                )
        chained = zlib.crc32(raw, self._digests[-1] if self._digests else 0)
        self._batches.append(raw)
        self._ends.append(header.last_offset + 1)
        self._digests.append(chained)
