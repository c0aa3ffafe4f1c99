"""The partitions this broker hosts: their logs on disk and their in-memory state.

Follows the metadata image: a partition whose replicas include this broker
gets a directory `<topic>-<partition>/` under the data dir and a Partition
object; a deleted topic's directories are removed. Idempotent-producer state
is rebuilt at open from a snapshot written at clean shutdown plus the batch
headers appended after it (all of it, after a crash).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

from broker.controller.image import MetadataImage, TopicImage
from broker.log.checkpoints import CorruptCheckpointError, OffsetCheckpointFile
from broker.log.log import Log
from broker.log.log_config import LogConfig
from broker.replication.leader import Completion
from broker.replication.partition import Assignment, Partition
from broker.replication.producer_state import ProducerStateManager
from protocol.batch import HEADER_SIZE, parse_header

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "producer-state.snapshot"
HW_CHECKPOINT = "replication-offset-checkpoint"
SCAN_READ_BYTES = 4 * 1024 * 1024

_TOPIC_CONFIG_FIELDS = {
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "max.message.bytes": "max_message_bytes",
    "flush.messages": "flush_messages",
    "flush.ms": "flush_ms",
}


def topic_log_config(defaults: LogConfig, overrides: dict[str, str]) -> LogConfig:
    """The broker's log defaults with a topic's config overrides applied."""
    changes = {
        _TOPIC_CONFIG_FIELDS[k]: int(v) for k, v in overrides.items() if k in _TOPIC_CONFIG_FIELDS
    }
    return replace(defaults, **changes) if changes else defaults


class ReplicaManager:
    """Partitions hosted here, kept in step with the metadata image."""

    def __init__(
        self,
        node_id: int,
        data_dir: Path,
        defaults: LogConfig,
        *,
        min_insync_replicas: int,
        lag_time_max_ms: int,
    ) -> None:
        self.node_id = node_id
        self.data_dir = data_dir
        self.defaults = defaults
        self.min_insync_replicas = min_insync_replicas
        self.lag_time_max_ms = lag_time_max_ms
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._hw_checkpoint = OffsetCheckpointFile(data_dir / HW_CHECKPOINT)
        try:
            self._saved_hw = self._hw_checkpoint.read()
        except CorruptCheckpointError as exc:
            log.warning("%s; high watermarks start from 0", exc)
            self._saved_hw = {}

    def get(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))

    def sync_with(self, image: MetadataImage, now_ms: int) -> list[Completion]:
        """Open partitions the image gives this broker, apply their roles, drop the rest.

        Returns acks=all produces failed because this broker stopped leading.
        """
        wanted: set[tuple[str, int]] = set()
        failed: list[Completion] = []
        for topic in image.topics.values():
            for index, state in topic.partitions.items():
                if self.node_id not in state.replicas:
                    continue
                key = (topic.name, index)
                wanted.add(key)
                partition = self.partitions.get(key) or self._open(topic, index, now_ms)
                partition.min_insync_replicas = int(
                    topic.configs.get("min.insync.replicas", self.min_insync_replicas)
                )
                assignment = Assignment(
                    state.leader,
                    state.leader_epoch,
                    state.partition_epoch,
                    tuple(state.replicas),
                    tuple(state.isr),
                )
                failed += partition.become(assignment, now_ms)
        for key in [k for k in self.partitions if k not in wanted]:
            failed += self._delete(key)
        return failed

    def _open(self, topic: TopicImage, index: int, now_ms: int) -> Partition:
        config = topic_log_config(self.defaults, topic.configs)
        directory = self.data_dir / f"{topic.name}-{index}"
        log_ = Log(directory, config, now_ms=now_ms)
        producers = ProducerStateManager()
        _restore_producer_state(log_, producers, directory)
        partition = Partition(
            topic.name,
            index,
            log_,
            producers,
            node_id=self.node_id,
            max_message_bytes=config.max_message_bytes,
            min_insync_replicas=self.min_insync_replicas,
            lag_time_max_ms=self.lag_time_max_ms,
            high_watermark=self._saved_hw.get((topic.name, index), 0),
        )
        self.partitions[(topic.name, index)] = partition
        log.info(
            "partition %s-%d open: log start %d, log end %d, high watermark %d, %d producers",
            topic.name,
            index,
            log_.log_start_offset,
            log_.log_end_offset,
            partition.high_watermark,
            len(producers),
        )
        return partition

    def checkpoint_high_watermarks(self) -> None:
        """Write replication-offset-checkpoint (Kafka's file of high watermarks)."""
        self._hw_checkpoint.write({k: p.high_watermark for k, p in self.partitions.items()})

    def _delete(self, key: tuple[str, int]) -> list[Completion]:
        partition = self.partitions.pop(key)
        failed = partition.leader.resign() if partition.leader is not None else []
        partition.log.close()
        shutil.rmtree(partition.log.dir, ignore_errors=True)
        log.info("partition %s deleted", partition.name)
        return failed

    def maintain(self, now_ms: int, *, retention: bool) -> None:
        """Periodic log work: time-based roll and flush policy; retention when due."""
        for partition in self.partitions.values():
            partition.log.maybe_roll(now_ms)
            if retention:
                deleted = partition.log.delete_retention(now_ms, partition.high_watermark)
                if deleted:
                    log.info(
                        "retention deleted %d segment(s) of %s; log start offset now %d",
                        deleted,
                        partition.name,
                        partition.log.log_start_offset,
                    )
            partition.log.maybe_flush(now_ms)

    def close(self) -> None:
        """Flush every log, snapshot producer state, close files (clean shutdown)."""
        for partition in self.partitions.values():
            partition.log.flush()
            _write_snapshot(partition)
        self.checkpoint_high_watermarks()
        for partition in self.partitions.values():
            partition.log.close()
        self.partitions.clear()


def _write_snapshot(partition: Partition) -> None:
    path = Path(partition.log.dir) / SNAPSHOT_FILE
    tmp = path.with_suffix(".tmp")
    data = {"offset": partition.log.log_end_offset, "producers": partition.producers.to_snapshot()}
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _restore_producer_state(log_: Log, producers: ProducerStateManager, directory: Path) -> None:
    """Load the clean-shutdown snapshot if it still matches the log, then replay headers."""
    path = directory / SNAPSHOT_FILE
    start = log_.log_start_offset
    try:
        data = json.loads(path.read_text())
        if log_.log_start_offset <= data["offset"] <= log_.log_end_offset:
            producers.load_snapshot(data["producers"])
            start = data["offset"]
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
    path.unlink(missing_ok=True)  # a later crash must not reuse a stale snapshot
    offset = start
    while offset < log_.log_end_offset:
        data = log_.read(offset, SCAN_READ_BYTES).data
        pos = 0
        while pos + HEADER_SIZE <= len(data):
            header = parse_header(data, pos)
            if pos + header.size > len(data):
                break
            if header.last_offset >= offset:
                producers.record(header, header.base_offset)
            pos += header.size
            offset = header.last_offset + 1
