"""Leader epoch → first offset map of one partition (Kafka's LeaderEpochFileCache).

Each entry says "leader epoch E wrote its first record at offset O". Followers
ask the leader for the end offset of their latest epoch (OffsetForLeaderEpoch,
KIP-101/KIP-279) and truncate to it before fetching, which is what keeps
replicas from diverging after a failover. Every change is persisted at once to
``leader-epoch-checkpoint``; changes happen once per leader change or
truncation, so the fsync cost does not matter.
"""

from __future__ import annotations

import bisect
import logging
import os

from broker.log.checkpoints import LEADER_EPOCH_CHECKPOINT, LeaderEpochCheckpointFile

log = logging.getLogger(__name__)

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochCache:
    """Strictly increasing (epoch, start_offset) entries, mirrored to a checkpoint file."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        """Load ``<directory>/leader-epoch-checkpoint`` (CorruptCheckpointError if bad)."""
        self._file = LeaderEpochCheckpointFile(os.path.join(directory, LEADER_EPOCH_CHECKPOINT))
        self._epochs: list[int] = []
        self._offsets: list[int] = []
        for epoch, offset in self._file.read():
            if self._epochs and (epoch <= self._epochs[-1] or offset < self._offsets[-1]):
                log.warning(
                    "%s: dropping non-monotonic entry %d %d", self._file.path, epoch, offset
                )
                continue
            self._epochs.append(epoch)
            self._offsets.append(offset)
        self._persisted = self.entries

    @property
    def entries(self) -> list[tuple[int, int]]:
        """A copy of the (epoch, start offset) entries, oldest first."""
        return list(zip(self._epochs, self._offsets, strict=True))

    @property
    def latest_epoch(self) -> int:
        """The newest epoch, or UNDEFINED_EPOCH when empty."""
        return self._epochs[-1] if self._epochs else UNDEFINED_EPOCH

    @property
    def earliest_epoch(self) -> int:
        return self._epochs[0] if self._epochs else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int, *, flush: bool = True) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; True if the cache changed.

        An epoch not above the latest one is ignored (the first offset written
        in an epoch is the one that counts). A newer epoch that starts below an
        existing entry means those entries describe offsets that no longer
        exist; they are dropped, as Kafka does, with a warning.
        """
        assert epoch >= 0 and start_offset >= 0, (epoch, start_offset)
        if self._epochs and epoch <= self._epochs[-1]:
            return False
        cut = bisect.bisect_left(self._offsets, start_offset)
        if cut < len(self._offsets):
            log.warning(
                "%s: epoch %d starts at %d, below existing entries %s; dropping them",
                self._file.path,
                epoch,
                start_offset,
                self.entries[cut:],
            )
            del self._epochs[cut:], self._offsets[cut:]
        self._epochs.append(epoch)
        self._offsets.append(start_offset)
        if flush:
            self.flush()
        return True

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) answering OffsetForLeaderEpoch; see epoch_end_offset."""
        return epoch_end_offset(self._epochs, self._offsets, requested_epoch, log_end_offset)

    def truncate_from_end(self, end_offset: int, *, flush: bool = True) -> None:
        """Drop entries starting at or after ``end_offset`` (the log was truncated there)."""
        cut = bisect.bisect_left(self._offsets, end_offset)
        if cut < len(self._offsets):
            del self._epochs[cut:], self._offsets[cut:]
        if flush:
            self.flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """Forget offsets below ``start_offset`` (the log start moved up).

        The entry covering ``start_offset`` is kept, moved to start there, so
        the epoch of the first remaining record is still known.
        """
        covering = bisect.bisect_right(self._offsets, start_offset) - 1
        if covering < 0 or (covering == 0 and self._offsets[0] == start_offset):
            return
        del self._epochs[:covering], self._offsets[:covering]
        self._offsets[0] = start_offset
        self.flush()

    def clear(self) -> None:
        """Drop every entry (the log was emptied and restarted elsewhere)."""
        if self._epochs:
            self._epochs.clear()
            self._offsets.clear()
            self.flush()

    def flush(self) -> None:
        """Write the checkpoint if the entries differ from what the file holds.

        Changes made with ``flush=False`` (recovery re-deriving epochs from
        batches) are persisted here, once, and only if they changed anything.
        """
        entries = self.entries
        if entries != self._persisted:
            self._file.write(entries)
            self._persisted = entries


def epoch_end_offset(
    epochs: list[int], offsets: list[int], requested_epoch: int, log_end_offset: int
) -> tuple[int, int]:
    """(epoch, end offset) answering OffsetForLeaderEpoch for ``requested_epoch``, given
    the cache's epochs and their start offsets (both ascending).

    The end offset of an epoch is the start offset of the next higher epoch
    present, or the log end offset for the latest epoch. For an epoch this
    replica never saw, the answer is the largest known epoch below it with
    the start of the next one; below every known epoch, the requested epoch
    with the earliest start offset; above every known epoch, undefined.
    """
    if requested_epoch == UNDEFINED_EPOCH or not epochs:
        return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
    if requested_epoch == epochs[-1]:
        return requested_epoch, log_end_offset
    higher = bisect.bisect_right(epochs, requested_epoch)
    if higher == len(epochs):
        return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
    if higher == 0:
        return requested_epoch, offsets[0]
    return epochs[higher - 1], offsets[higher]
