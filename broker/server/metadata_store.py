"""The local metadata log: metadata records as record batches in `__cluster_metadata-0`.

KRaft keeps cluster metadata in a log of ordinary record batches; so do we.
Each command's records go into one batch (so a command applies whole or not
at all after a crash), appended and fsynced before the command is answered.
At start-up the log is replayed into a fresh MetadataImage. The controller
quorum (Raft) will replicate this same log between voters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from broker.controller.image import MetadataImage
from broker.controller.records import MetadataRecord, decode_record, encode_record
from broker.log.log import Log
from broker.log.log_config import LogConfig
from protocol.records import build_batch, decode_batch

log = logging.getLogger(__name__)

METADATA_DIR = "__cluster_metadata-0"
READ_BYTES = 1 << 20


class MetadataStore:
    def __init__(self, data_dir: Path, now_ms: int) -> None:
        config = LogConfig(segment_bytes=64 * 1024 * 1024, retention_ms=-1, retention_bytes=-1)
        self.log = Log(data_dir / METADATA_DIR, config, now_ms=now_ms)
        self.image = MetadataImage()
        for record in self._read_all():
            self.image.replay(record)
        log.info(
            "metadata loaded: %d records, %d topics, end offset %d",
            self.image.applied_records,
            len(self.image.topics),
            self.log.log_end_offset,
        )

    def _read_all(self) -> Iterator[MetadataRecord]:
        offset = self.log.log_start_offset
        while offset < self.log.log_end_offset:
            data = self.log.read(offset, READ_BYTES).data
            pos = 0
            while pos < len(data):
                header, records = decode_batch(data, pos)
                for record in records:
                    yield decode_record(record.value)
                pos += header.size
                offset = header.last_offset + 1

    def commit(self, records: list[MetadataRecord], now_ms: int) -> None:
        """Durably append one command's records, then apply them to the image."""
        if not records:
            return
        batch = build_batch([(None, encode_record(r), (), now_ms) for r in records])
        self.log.append_as_leader(batch, 0, now_ms)
        self.log.flush()
        for record in records:
            self.image.replay(record)

    def close(self) -> None:
        self.log.close()
