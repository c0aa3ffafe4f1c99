"""Checkpoint files in Kafka's text format, written atomically.

Every checkpoint Kafka keeps (leader-epoch-checkpoint, recovery-point-offset-
checkpoint, log-start-offset-checkpoint, replication-offset-checkpoint) is::

    <version>
    <number of entries>
    <entry>            one per line, fields separated by a single space

A write goes to ``<name>.tmp``, is flushed and fsynced, renamed over the old
file and the directory is fsynced, so a crash leaves either the old or the new
checkpoint, never a mix. A file that does not parse raises
CorruptCheckpointError; the caller decides whether to fall back (recovery
points: recover everything) or to stop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
REPLICATION_OFFSET_CHECKPOINT = "replication-offset-checkpoint"
LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
TMP_SUFFIX = ".tmp"

CHECKPOINT_BYTES_MAX = 64 * 1024 * 1024
"""Refuse to read a checkpoint larger than this: it cannot be one we wrote."""

TopicPartition = tuple[str, int]


class CorruptCheckpointError(ValueError):
    """A checkpoint file that is not in the expected format."""


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so a create, rename or unlink inside it is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(path: str | os.PathLike[str], version: int, lines: Iterable[str]) -> None:
    """Atomically replace ``path`` with a version line, a count line and ``lines``."""
    lines = list(lines)
    for line in lines:
        assert "\n" not in line, line
    text = f"{version}\n{len(lines)}\n" + "".join(f"{line}\n" for line in lines)
    tmp = os.fspath(path) + TMP_SUFFIX
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def read_checkpoint(
    path: str | os.PathLike[str], version: int, parse: Callable[[list[str]], T]
) -> list[T] | None:
    """Entries of the checkpoint at ``path``, or None if there is no such file.

    ``parse`` turns one line's fields into an entry and raises ValueError if it
    cannot.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > CHECKPOINT_BYTES_MAX:
                raise CorruptCheckpointError(f"{path}: {size} bytes, over {CHECKPOINT_BYTES_MAX}")
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        lines = raw.decode("utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) < 2:
            raise ValueError("missing version or count line")
        if int(lines[0]) != version:
            raise ValueError(f"version {lines[0]!r}, expected {version}")
        count = int(lines[1])
        if count != len(lines) - 2:
            raise ValueError(f"count line says {count} entries, file holds {len(lines) - 2}")
        return [parse(line.split(" ")) for line in lines[2:]]
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(f"{path}: {exc}") from exc


def _fields(fields: list[str], n: int) -> list[str]:
    if len(fields) != n or not all(fields):
        raise ValueError(f"malformed entry {' '.join(fields)!r}")
    return fields


class OffsetCheckpointFile:
    """``topic partition offset`` entries, one file per data directory (Kafka's layout).

    Used for recovery points, log start offsets and high watermarks
    (replication-offset-checkpoint).
    """

    VERSION = 0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def read(self) -> dict[TopicPartition, int]:
        """All entries; empty if the file does not exist."""
        entries = read_checkpoint(self.path, self.VERSION, self._parse)
        return dict(entries or ())

    def write(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Replace the file with exactly ``offsets``."""
        lines = []
        for (topic, partition), offset in sorted(offsets.items()):
            assert topic and " " not in topic and partition >= 0 and offset >= 0
            lines.append(f"{topic} {partition} {offset}")
        write_checkpoint(self.path, self.VERSION, lines)

    @staticmethod
    def _parse(fields: list[str]) -> tuple[TopicPartition, int]:
        topic, partition, offset = _fields(fields, 3)
        partition_n, offset_n = int(partition), int(offset)
        if partition_n < 0 or offset_n < 0:
            raise ValueError(f"negative partition or offset in {' '.join(fields)!r}")
        return (topic, partition_n), offset_n


class LeaderEpochCheckpointFile:
    """``epoch start_offset`` entries: the leader-epoch-checkpoint of one partition."""

    VERSION = 0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def read(self) -> list[tuple[int, int]]:
        """Entries in file order; empty if the file does not exist."""
        return read_checkpoint(self.path, self.VERSION, self._parse) or []

    def write(self, entries: Iterable[tuple[int, int]]) -> None:
        """Replace the file with ``entries`` (epoch, start offset)."""
        write_checkpoint(self.path, self.VERSION, (f"{e} {o}" for e, o in entries))

    @staticmethod
    def _parse(fields: list[str]) -> tuple[int, int]:
        epoch, offset = (int(f) for f in _fields(fields, 2))
        if epoch < 0 or offset < 0:
            raise ValueError(f"negative epoch or offset in {' '.join(fields)!r}")
        return epoch, offset
