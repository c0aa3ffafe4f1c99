"""The metadata image as the Raft state machine every node runs.

Committed entries (one controller command's records each) are replayed into
the image in log order; a snapshot replaces it wholesale. After each change
the `changed` event fires, and the broker brings its partitions in line with
the new image (become leader or follower, open or delete logs).
"""

from __future__ import annotations

import logging

import trio

from broker.controller.image import MetadataImage
from broker.controller.records import decode_record
from broker.controller.snapshot import image_from_snapshot, image_to_snapshot
from broker.raft.messages import Entry
from broker.server.controller_service import decode_entry

log = logging.getLogger(__name__)


class MetadataPlane:
    def __init__(self) -> None:
        self.image = MetadataImage()
        self.changed = trio.Event()
        self.version = 0

    def load_snapshot(self, data: bytes, index: int) -> None:
        self.image = image_from_snapshot(data)
        log.info("metadata image loaded from the snapshot at index %d", index)
        self._notify()

    def apply(self, entry: Entry) -> None:
        raws = decode_entry(entry.data)
        for raw in raws:
            self.image.replay(decode_record(raw), entry.index)
        if raws:
            self._notify()

    def snapshot(self) -> bytes:
        return image_to_snapshot(self.image)

    def _notify(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = trio.Event()
