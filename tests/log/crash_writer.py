"""Crash-test writer: appends batches to a Log until killed, printing each acknowledged offset.

Usage: python crash_writer.py <log dir> <leader epoch>

Batches are copies of TEMPLATES (only baseOffset and partitionLeaderEpoch
differ on disk), so the test can check every byte that survives. After each
append returns, the writer prints the batch's last offset and calls
maybe_flush, as a broker's driver would (so rolled segments get flushed and
the recovery point checkpointed while the writer runs).
"""

from __future__ import annotations

import sys

from broker.log.log import Log
from broker.log.log_config import LogConfig
from protocol.records import build_batch

CONFIG = LogConfig(segment_bytes=512 * 1024, index_interval_bytes=4096, retention_ms=-1)

TEMPLATES = [
    build_batch([(b"small", b"v", [], 1000)]),
    build_batch([(b"k%d" % i, bytes(100), [], 2000 + i) for i in range(50)]),
    build_batch([(b"k%d" % i, bytes(1024), [], 3000 + i) for i in range(100)]),
    build_batch([(b"big", bytes(200 * 1024), [], 4000)]),
]


def main() -> None:
    directory, epoch = sys.argv[1], int(sys.argv[2])
    log = Log(directory, CONFIG, now_ms=0)
    now_ms = 0
    while True:
        for template in TEMPLATES:
            info = log.append_as_leader(template, epoch, now_ms)
            log.maybe_flush(now_ms)
            sys.stdout.write(f"{info.last_offset}\n")
            sys.stdout.flush()
            now_ms += 1


if __name__ == "__main__":
    main()
