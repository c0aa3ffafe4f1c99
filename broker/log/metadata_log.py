"""Durable storage for the controller quorum's Raft log (KRaft's layout, simplified).

- Entries live in `__cluster_metadata-0/` as ordinary record batches: Raft
  index i is log offset i - 1, the entry's term is the batch's
  partitionLeaderEpoch, and its data is the value of the batch's one record.
- The term and vote live in `quorum-state` (JSON, written atomically).
- Snapshots live in `<20-digit index>-<10-digit term>.checkpoint` beside the
  log (atomic), and the log below a snapshot is deleted.

`DurableRaftLog` is a MemoryStorage that also writes every operation to disk,
fsynced, before returning: the Raft driver calls apply() for each Persist
effect before it sends anything, which is the order Raft's safety needs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from broker.log.checkpoints import fsync_dir
from broker.log.log import Log
from broker.log.log_config import LogConfig
from broker.raft.messages import Entry, Snapshot
from broker.raft.storage import AppendOps, HardState, MemoryStorage, Operation, SaveSnapshot
from protocol.records import build_batch, decode_batch

log = logging.getLogger(__name__)

METADATA_DIR = "__cluster_metadata-0"
QUORUM_STATE = "quorum-state"
SNAPSHOT_SUFFIX = ".checkpoint"
READ_BYTES = 1 << 20


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class DurableRaftLog(MemoryStorage):
    """Raft storage in memory, mirrored to files under data_dir."""

    def __init__(self, data_dir: Path, now_ms: int) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.now_ms = now_ms
        config = LogConfig(segment_bytes=64 * 1024 * 1024, retention_ms=-1, retention_bytes=-1)
        self.log = Log(data_dir / METADATA_DIR, config, now_ms=now_ms)
        self._load()

    # -- loading ----------------------------------------------------------------------

    def _load(self) -> None:
        state = self.data_dir / QUORUM_STATE
        if state.exists():
            data = json.loads(state.read_text())
            super().apply(HardState(data["term"], data["voted_for"]))
        snapshot = self._latest_snapshot()
        if snapshot is not None:
            super().apply(SaveSnapshot(snapshot))
        entries = list(self._read_entries(max(self.first_index(), self.log.log_start_offset + 1)))
        if entries and entries[0].index == self.last_index() + 1:
            super().apply(AppendOps(tuple(entries)))
        log.info(
            "metadata log loaded: term %d, snapshot at %d, entries %d..%d",
            self.hard_state().term,
            self.snapshot().index,
            self.first_index(),
            self.last_index(),
        )

    def _latest_snapshot(self) -> Snapshot | None:
        found = sorted(self.data_dir.glob(f"*{SNAPSHOT_SUFFIX}"))
        if not found:
            return None
        path = found[-1]
        index, term = (int(part) for part in path.stem.split("-"))
        return Snapshot(index, term, path.read_bytes())

    def _read_entries(self, first_index: int):
        offset = first_index - 1
        while offset < self.log.log_end_offset:
            data = self.log.read(offset, READ_BYTES).data
            pos = 0
            while pos < len(data):
                header, records = decode_batch(data, pos)
                yield Entry(
                    header.base_offset + 1, header.partition_leader_epoch, records[0].value or b""
                )
                pos += header.size
                offset = header.last_offset + 1

    # -- writing ----------------------------------------------------------------------

    def apply(self, operation: Operation) -> None:
        """Make the operation durable, then apply it in memory."""
        if isinstance(operation, AppendOps):
            self._append_durably(operation.entries)
        elif isinstance(operation, HardState):
            payload = {"term": operation.term, "voted_for": operation.voted_for}
            _write_atomic(self.data_dir / QUORUM_STATE, json.dumps(payload).encode())
        elif isinstance(operation, SaveSnapshot):
            self._snapshot_durably(operation.snapshot)
        super().apply(operation)

    def _append_durably(self, entries: tuple[Entry, ...]) -> None:
        if not entries:
            return
        start = entries[0].index
        if start - 1 < self.log.log_end_offset:
            self.log.truncate_to(start - 1, self.now_ms)
        if self.log.log_end_offset != start - 1:
            self.log.truncate_fully_and_start_at(start - 1, self.now_ms)
        for entry in entries:
            batch = build_batch(
                [(None, entry.data, (), 0)],
                base_offset=entry.index - 1,
                partition_leader_epoch=entry.term,
            )
            self.log.append_as_follower(batch, self.now_ms)
        self.log.flush()

    def _snapshot_durably(self, snapshot: Snapshot) -> None:
        if snapshot.index <= self.snapshot().index:
            return
        name = f"{snapshot.index:020d}-{snapshot.term:010d}{SNAPSHOT_SUFFIX}"
        _write_atomic(self.data_dir / name, snapshot.data)
        for old in self.data_dir.glob(f"*{SNAPSHOT_SUFFIX}"):
            if old.name != name:
                old.unlink()
        keeps_suffix = self.term_at(snapshot.index) == snapshot.term
        if keeps_suffix and snapshot.index <= self.log.log_end_offset:
            self.log.increment_log_start_offset(snapshot.index)
            self.log.delete_retention(self.now_ms)
        else:
            self.log.truncate_fully_and_start_at(snapshot.index, self.now_ms)

    def close(self) -> None:
        self.log.close()
