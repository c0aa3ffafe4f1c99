"""The narrow storage interface of the Raft core and an in-memory implementation.

A core reads its durable state through `RaftLog` once, when it starts, and from
then on writes only by returning `Persist(operation)` effects holding one of the
three operations below. `MemoryStorage.apply` gives those operations their
meaning; the core keeps its own `MemoryStorage` mirror and applies every
operation it emits to it, so the image in memory is, by construction, what the
disk will hold once the driver has executed the effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from broker.raft.messages import Entry, Snapshot

EMPTY_SNAPSHOT = Snapshot(index=0, term=0, data=b"")


@dataclass(frozen=True, slots=True)
class AppendOps:
    """Write `entries` (contiguous) at entries[0].index, first dropping any
    suffix from that index on: a follower overwrites a conflicting tail."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class HardState:
    """The term and the vote cast in it: must be durable before any message
    that depends on them is sent, or a restarted voter could vote twice."""

    term: int
    voted_for: int | None


@dataclass(frozen=True, slots=True)
class SaveSnapshot:
    """Replace the log prefix up to snapshot.index. Entries after it survive
    only if the log holds the snapshot's own (index, term); otherwise the log
    diverged from the snapshot's history and is dropped whole."""

    snapshot: Snapshot


Operation = AppendOps | HardState | SaveSnapshot


class RaftLog(Protocol):
    """What a Raft core reads from durable storage."""

    def first_index(self) -> int:
        """Index of the first entry still held (snapshot.index + 1)."""
        ...

    def last_index(self) -> int:
        """Index of the last entry (snapshot.index when the log is empty)."""
        ...

    def term_at(self, index: int) -> int | None:
        """Term of the entry at `index`; the snapshot's term at its index; None
        for compacted or absent indexes."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        """Entries [lo, hi), stopping before `max_bytes` of data but never empty
        when the range is not."""
        ...

    def snapshot(self) -> Snapshot: ...

    def hard_state(self) -> HardState: ...


class MemoryStorage:
    """A Raft log, snapshot and hard state held in memory."""

    def __init__(self) -> None:
        self._snapshot = EMPTY_SNAPSHOT
        self._entries: list[Entry] = []  # _entries[i].index == snapshot.index + 1 + i
        self._hard_state = HardState(term=0, voted_for=None)

    @classmethod
    def copy_of(cls, source: RaftLog) -> MemoryStorage:
        """A private copy of everything `source` holds, read through RaftLog."""
        copy = cls()
        copy._snapshot = source.snapshot()
        copy._hard_state = source.hard_state()
        first, last = source.first_index(), source.last_index()
        while first <= last:
            chunk = source.entries(first, last + 1, 1 << 20)
            copy._entries.extend(chunk)
            first = chunk[-1].index + 1
        return copy

    def first_index(self) -> int:
        return self._snapshot.index + 1

    def last_index(self) -> int:
        return self._snapshot.index + len(self._entries)

    def term_at(self, index: int) -> int | None:
        if index == self._snapshot.index:
            return self._snapshot.term
        offset = index - self._snapshot.index - 1
        if 0 <= offset < len(self._entries):
            return self._entries[offset].term
        return None

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        assert self.first_index() <= lo, (lo, self.first_index())
        assert hi <= self.last_index() + 1, (hi, self.last_index())
        base = self._snapshot.index + 1
        out: list[Entry] = []
        size = 0
        for entry in self._entries[lo - base : hi - base]:
            size += len(entry.data)
            if out and size > max_bytes:
                break
            out.append(entry)
        return out

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def hard_state(self) -> HardState:
        return self._hard_state

    def apply(self, operation: Operation) -> None:
        """Give a Persist operation its effect on this storage."""
        if isinstance(operation, AppendOps):
            self._append(operation.entries)
        elif isinstance(operation, HardState):
            self._hard_state = operation
        elif isinstance(operation, SaveSnapshot):
            self._save_snapshot(operation.snapshot)
        else:
            raise TypeError(f"not a Raft storage operation: {operation!r}")

    def _append(self, entries: tuple[Entry, ...]) -> None:
        if not entries:
            return
        start = entries[0].index
        assert self.first_index() <= start <= self.last_index() + 1, (start, self.first_index())
        for before, after in zip(entries, entries[1:], strict=False):
            assert after.index == before.index + 1 and after.term >= before.term
        assert entries[0].term >= (self.term_at(start - 1) or 0)
        del self._entries[start - self._snapshot.index - 1 :]
        self._entries.extend(entries)

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.index <= self._snapshot.index:
            return
        if self.term_at(snapshot.index) == snapshot.term:
            self._entries = self._entries[snapshot.index - self._snapshot.index :]
        else:
            self._entries = []
        self._snapshot = snapshot
