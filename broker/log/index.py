"""Sparse per-segment indexes: offset → file position, and timestamp → offset.

Kafka's formats, big-endian like Java's ByteBuffer:

- ``.index`` (OffsetIndex): 8-byte entries, relative offset int32 + file
  position int32; offsets and positions strictly increase.
- ``.timeindex`` (TimeIndex): 12-byte entries, timestamp int64 + relative
  offset int32; timestamps strictly increase (an entry is only added when the
  segment's maximum timestamp grows), offsets never decrease.

Kafka preallocates and memory-maps index files and trims them on close. Here
entries are appended to the file (queued, then written 4 KiB at a time), so a
file is always exactly its real size and needs no trimming; the entries live
in memory as native ``array``s (4-12 bytes each, about 0.5% of the log at the
default interval) so lookups are a C-speed bisect. Arrays are loaded lazily,
on a segment's first lookup.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct
import sys
from array import array

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
_SWAP = sys.byteorder == "little"
PENDING_BYTES_MAX = 4096
"""Index entries are queued in memory and written once this many bytes wait."""
assert array("i").itemsize == 4 and array("q").itemsize == 8


class IndexFile:
    """Shared file handling: lazy write descriptor, dirty flag, truncate, fsync."""

    ENTRY_SIZE = 0

    def __init__(self, path: str, base_offset: int, max_index_bytes: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max_index_bytes // self.ENTRY_SIZE
        self._fd: int | None = None
        self._pending = bytearray()  # entries not yet written to the file
        self._pending_at = 0  # file position of the first pending entry
        self._dirty = False

    def _read_file(self) -> bytes | None:
        """The file's bytes, or None if missing or not a whole number of entries."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        return raw if len(raw) % self.ENTRY_SIZE == 0 else None

    def _write_entry(self, entry: bytes, index: int) -> None:
        """Queue an entry; entries reach the file in PENDING_BYTES_MAX batches.

        An index file is only trusted below the recovery point, which moves
        after ``flush()``, and that writes everything queued first; a crash
        that loses queued entries leaves an index the recovery rebuilds.
        """
        if not self._pending:
            self._pending_at = index * self.ENTRY_SIZE
        assert self._pending_at + len(self._pending) == index * self.ENTRY_SIZE, self.path
        self._pending += entry
        if len(self._pending) >= PENDING_BYTES_MAX:
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        written = os.pwrite(self._fd, self._pending, self._pending_at)
        assert written == len(self._pending), (self.path, written)
        self._pending.clear()
        self._dirty = True

    def _truncate_file(self, entries: int) -> None:
        self._write_pending()
        with open(self.path, "ab") as f:
            f.truncate(entries * self.ENTRY_SIZE)
        self._dirty = True

    def flush(self) -> None:
        """Write queued entries and fsync the file if anything changed since the last flush."""
        self._write_pending()
        if not self._dirty:
            return
        fd = self._fd if self._fd is not None else os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            if fd != self._fd:
                os.close(fd)
        self._dirty = False

    def close(self) -> None:
        """Write queued entries and release the write descriptor (entries stay in memory)."""
        self._write_pending()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _strictly_increasing(values: array) -> bool:
    return all(a < b for a, b in zip(values, values[1:]))  # noqa: B905 (different lengths)


def _non_decreasing(values: array) -> bool:
    return all(a <= b for a, b in zip(values, values[1:]))  # noqa: B905 (different lengths)


class OffsetIndex(IndexFile):
    """Maps an offset to the file position of a batch at or before it (Kafka's OffsetIndex).

    An entry (offset O, position P) means the batch starting at P ends at O.
    """

    ENTRY_SIZE = _OFFSET_ENTRY.size

    def __init__(self, path: str, base_offset: int, max_index_bytes: int) -> None:
        super().__init__(path, base_offset, max_index_bytes)
        self._offsets = array("i")  # relative to base_offset
        self._positions = array("i")

    def load(self, log_size: int) -> bool:
        """Read the file; False (and empty) if missing or failing the sanity check."""
        raw = self._read_file()
        self._offsets, self._positions = array("i"), array("i")
        if raw is None:
            return False
        pairs = array("i", raw)
        if _SWAP:
            pairs.byteswap()
        offsets, positions = pairs[0::2], pairs[1::2]
        sane = not offsets or (
            offsets[0] >= 0
            and positions[0] >= 0
            and positions[-1] < log_size
            and _strictly_increasing(offsets)
            and _strictly_increasing(positions)
        )
        if sane:
            self._offsets, self._positions = offsets, positions
        return sane

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self.max_entries

    @property
    def last_entry(self) -> tuple[int, int]:
        """(absolute offset, position) of the last entry, or (base_offset, 0) when empty."""
        if not self._offsets:
            return self.base_offset, 0
        return self.base_offset + self._offsets[-1], self._positions[-1]

    def ends(self) -> list[tuple[int, int]]:
        """The first and last (absolute offset, position) entries, if any."""
        if not self._offsets:
            return []
        base = self.base_offset
        return [(base + self._offsets[0], self._positions[0]), self.last_entry]

    def entries(self) -> list[tuple[int, int]]:
        """All (absolute offset, position) entries; for tests and tools."""
        base = self.base_offset
        return [(base + o, p) for o, p in zip(self._offsets, self._positions, strict=True)]

    def append(self, offset: int, position: int) -> None:
        """Add an entry; offsets and positions must grow."""
        relative = offset - self.base_offset
        assert 0 <= relative < 1 << 31 and position >= 0, (offset, position)
        assert not self._offsets or (
            relative > self._offsets[-1] and position > self._positions[-1]
        ), (offset, position, self.last_entry)
        self._write_entry(_OFFSET_ENTRY.pack(relative, position), len(self._offsets))
        self._offsets.append(relative)
        self._positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """The last entry with offset <= ``offset``, or (base_offset, 0) if none."""
        i = bisect.bisect_right(self._offsets, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._offsets[i], self._positions[i]

    def truncate_to(self, offset: int) -> None:
        """Drop entries with offset >= ``offset``."""
        keep = bisect.bisect_left(self._offsets, offset - self.base_offset)
        self.truncate_entries(keep)

    def truncate_entries(self, keep: int) -> None:
        """Keep only the first ``keep`` entries, in memory and on disk."""
        if keep < len(self._offsets) or keep == 0:
            del self._offsets[keep:], self._positions[keep:]
            self._truncate_file(keep)


class TimeIndex(IndexFile):
    """Maps a timestamp to the offset where the segment's max timestamp first reached it."""

    ENTRY_SIZE = _TIME_ENTRY.size

    def __init__(self, path: str, base_offset: int, max_index_bytes: int) -> None:
        super().__init__(path, base_offset, max_index_bytes)
        self._timestamps = array("q")
        self._offsets = array("i")

    def load(self, log_size: int) -> bool:
        """Read the file; False (and empty) if missing or failing the sanity check."""
        del log_size  # entries hold no positions
        raw = self._read_file()
        self._timestamps, self._offsets = array("q"), array("i")
        if raw is None:
            return False
        timestamps, offsets = array("q"), array("i")
        for timestamp, offset in _TIME_ENTRY.iter_unpack(raw):
            timestamps.append(timestamp)
            offsets.append(offset)
        sane = not offsets or (
            offsets[0] >= 0 and _strictly_increasing(timestamps) and _non_decreasing(offsets)
        )
        if sane:
            self._timestamps, self._offsets = timestamps, offsets
        return sane

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self.max_entries

    @property
    def last_entry(self) -> tuple[int, int]:
        """(timestamp, absolute offset) of the last entry, or (-1, base_offset) when empty."""
        if not self._offsets:
            return -1, self.base_offset
        return self._timestamps[-1], self.base_offset + self._offsets[-1]

    def entries(self) -> list[tuple[int, int]]:
        """All (timestamp, absolute offset) entries; for tests and tools."""
        base = self.base_offset
        return [(t, base + o) for t, o in zip(self._timestamps, self._offsets, strict=True)]

    def maybe_append(self, timestamp: int, offset: int, *, skip_full_check: bool = False) -> None:
        """Add an entry if ``timestamp`` exceeds the last one (roll/close skip the full check)."""
        if self._timestamps and timestamp <= self._timestamps[-1]:
            return
        if timestamp < 0:
            return
        assert skip_full_check or not self.is_full, self.path
        relative = offset - self.base_offset
        assert 0 <= relative < 1 << 31, (offset, self.base_offset)
        assert not self._offsets or relative >= self._offsets[-1], (offset, self.last_entry)
        self._write_entry(_TIME_ENTRY.pack(timestamp, relative), len(self._offsets))
        self._timestamps.append(timestamp)
        self._offsets.append(relative)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """The last entry with timestamp <= ``timestamp``, or (-1, base_offset) if none."""
        i = bisect.bisect_right(self._timestamps, timestamp) - 1
        if i < 0:
            return -1, self.base_offset
        return self._timestamps[i], self.base_offset + self._offsets[i]

    def truncate_to(self, offset: int) -> None:
        """Drop entries with offset >= ``offset``."""
        keep = bisect.bisect_left(self._offsets, offset - self.base_offset)
        if keep < len(self._offsets) or keep == 0:
            del self._timestamps[keep:], self._offsets[keep:]
            self._truncate_file(keep)
