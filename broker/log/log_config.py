"""Per-partition log settings, with Kafka's names and defaults.

The broker's TOML loader (broker/config.py) checks ranges and reports bad
values to the operator; ``LogConfig.__post_init__`` only asserts sanity, so a
bug that builds a nonsense config crashes at once instead of corrupting a log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol.batch import HEADER_SIZE

INT32_MAX = (1 << 31) - 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Settings of one partition log. ``None`` means Kafka's "never" (Long.MAX)."""

    # segment.bytes: roll to a new segment before one would grow past this.
    segment_bytes: int = 1073741824
    # segment.ms: roll a non-empty segment this long after its first append.
    segment_ms: int = 604800000
    # segment.index.bytes: largest offset/time index file; roll when either is full.
    segment_index_bytes: int = 10485760
    # index.interval.bytes: log bytes between two offset index entries.
    index_interval_bytes: int = 4096
    # retention.bytes: delete oldest segments while the log is larger; -1 keeps all.
    retention_bytes: int = -1
    # retention.ms: delete segments whose newest timestamp is older; -1 keeps all.
    retention_ms: int = 604800000
    # flush.messages: fsync after this many unflushed records; None leaves it to the OS.
    flush_messages: int | None = None
    # flush.ms: fsync when the last flush is this old; None leaves it to the OS.
    flush_ms: int | None = None
    # max.message.bytes: the largest record batch a leader accepts.
    max_message_bytes: int = 1048588
    # file.delete.delay.ms: Kafka renames deleted segments to .deleted and unlinks
    # them later; trilog unlinks at once (readers copy bytes under the same
    # synchronous call, so no reader can hold a range into a deleted file) and
    # keeps the key only so configs carry over.
    file_delete_delay_ms: int = 60000

    def __post_init__(self) -> None:
        assert HEADER_SIZE <= self.segment_bytes <= INT32_MAX, self.segment_bytes
        assert self.segment_ms >= 1, self.segment_ms
        assert 24 <= self.segment_index_bytes <= INT32_MAX, self.segment_index_bytes
        assert 0 <= self.index_interval_bytes <= INT32_MAX, self.index_interval_bytes
        assert self.retention_bytes >= -1, self.retention_bytes
        assert self.retention_ms >= -1, self.retention_ms
        assert self.flush_messages is None or self.flush_messages >= 1, self.flush_messages
        assert self.flush_ms is None or self.flush_ms >= 0, self.flush_ms
        assert HEADER_SIZE <= self.max_message_bytes <= INT32_MAX, self.max_message_bytes
        assert self.file_delete_delay_ms >= 0, self.file_delete_delay_ms

    @classmethod
    def from_section(cls, section: Any) -> LogConfig:
        """Build from broker.config's LogSection, where -1 spells "never" for flushes."""
        return cls(
            segment_bytes=section.segment_bytes,
            segment_ms=section.segment_ms,
            segment_index_bytes=section.segment_index_bytes,
            index_interval_bytes=section.index_interval_bytes,
            retention_bytes=section.retention_bytes,
            retention_ms=section.retention_ms,
            flush_messages=None if section.flush_messages < 0 else max(1, section.flush_messages),
            flush_ms=None if section.flush_ms < 0 else section.flush_ms,
            max_message_bytes=max(section.message_bytes_max, HEADER_SIZE),
        )
