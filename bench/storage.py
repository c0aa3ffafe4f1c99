"""Storage benchmark: Log.append_as_leader and Log.read against the raw disk, same run.

    python bench/storage.py [--mib 256] [--repeat 3] [--dir /path/on/the/disk]

For batches of 1,000 records of 100 B and of 1 KiB (built once; the encoder is
not measured), it times:

- append: Log.append_as_leader of the same batch bytes until ``--mib`` MiB are
  written, then Log.flush() (one final fsync of log and indexes);
- raw write: os.write of the same batch bytes to a plain file, the same number
  of times, then one final os.fsync. Both runs include their final fsync and
  neither fsyncs per write, so durability is the same;
- read: Log.read from offset 0 to the end with max_bytes = 1 MiB, taking the
  next offset from the last batch header returned, as a consumer loop would;
- raw read: os.pread of the same file in 1 MiB chunks.

Page cache cannot be dropped here, so both reads come from memory. The storage
call and the raw call are timed one after the other, in alternating order,
inside the same loop (each with its own file and cursor), so a burst of load
from anything else on this small shared machine hits both sides alike. Each
figure is the best over ``--repeat`` runs (reads: over every pass of every
run), the usual estimator on a noisy machine; ratios are best over best, and
``append_vs_raw`` / ``read_vs_raw`` are the worse of the two sizes. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.log.log import Log  # noqa: E402
from broker.log.log_config import LogConfig  # noqa: E402
from protocol.batch import batch_size_at, parse_header  # noqa: E402
from protocol.records import build_batch  # noqa: E402

MiB = 1024 * 1024
READ_BYTES = MiB
READ_PASS_BYTES = 1024 * MiB
"""Read the log (and the raw file) this much per run, in whole passes."""
RECORDS_PER_BATCH = 1000
SIZES = {"100b": 100, "1kib": 1024}


def say(line: str) -> None:
    """One line on stdout (benches print; ruff's T20 forbids print())."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make_batch(value_bytes: int) -> bytes:
    return build_batch([(None, bytes(value_bytes), [], 1_700_000_000_000)] * RECORDS_PER_BATCH)


class Pair:
    """Accumulated seconds of the storage side and the raw side of one run."""

    def __init__(self) -> None:
        self.storage = 0.0
        self.raw = 0.0


def time_writes(root: Path, batch: bytes, count: int) -> Pair:
    """Append via the Log and write the raw file, call by call in alternating order."""
    pair = Pair()
    log = Log(root / "bench-0", LogConfig(retention_ms=-1), now_ms=0)
    fd = os.open(root / "raw.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    clock = time.perf_counter
    try:
        for i in range(count):
            t0 = clock()
            if i % 2:
                log.append_as_leader(batch, 1, now_ms=0)
                t1 = clock()
                os.write(fd, batch)
                t2 = clock()
                pair.storage += t1 - t0
                pair.raw += t2 - t1
            else:
                os.write(fd, batch)
                t1 = clock()
                log.append_as_leader(batch, 1, now_ms=0)
                t2 = clock()
                pair.raw += t1 - t0
                pair.storage += t2 - t1
        t0 = clock()
        log.flush()
        t1 = clock()
        os.fsync(fd)
        pair.storage += t1 - t0
        pair.raw += clock() - t1
    finally:
        os.close(fd)
        log.close()
    return pair


def time_reads(root: Path) -> tuple[Pair, int]:
    """Read the log via Log.read and the raw file via pread, call by call, alternating."""
    pair = Pair()
    log = Log(root / "bench-0", LogConfig(retention_ms=-1), now_ms=0)
    fd = os.open(root / "raw.bin", os.O_RDONLY)
    clock = time.perf_counter
    offset, total, end = 0, 0, log.log_end_offset
    raw_pos, raw_end = 0, os.fstat(fd).st_size
    try:
        while offset < end or raw_pos < raw_end:
            t0 = clock()
            if offset < end:
                data = log.read(offset, READ_BYTES).data
                total += len(data)
                last = parse_header(data, len(data) - _last_batch_size(data)).last_offset
                offset = last + 1
            t1 = clock()
            if raw_pos < raw_end:
                raw_pos += len(os.pread(fd, READ_BYTES, raw_pos))
            pair.storage += t1 - t0
            pair.raw += clock() - t1
    finally:
        os.close(fd)
        log.close()
    assert total == raw_pos == raw_end, (total, raw_pos, raw_end)
    return pair, total


def _last_batch_size(data) -> int:
    pos = 0
    while True:
        size = batch_size_at(data, pos)
        if pos + size == len(data):
            return size
        pos += size


def bench_size(root: Path, value_bytes: int, mib: int, repeat: int) -> dict[str, float]:
    """Best MB/s of each side over ``repeat`` runs (reads: several passes per run)."""
    batch = make_batch(value_bytes)
    count = max(2, mib * MiB // len(batch))
    passes = max(1, READ_PASS_BYTES // (count * len(batch)))
    best = {"append": 0.0, "raw_write": 0.0, "read": 0.0, "raw_read": 0.0}
    for _ in range(repeat):
        shutil.rmtree(root / "bench-0", ignore_errors=True)
        writes = time_writes(root, batch, count)
        moved = count * len(batch) / MiB
        best["append"] = max(best["append"], moved / writes.storage)
        best["raw_write"] = max(best["raw_write"], moved / writes.raw)
        for _ in range(passes):
            reads, total = time_reads(root)
            best["read"] = max(best["read"], total / MiB / reads.storage)
            best["raw_read"] = max(best["raw_read"], total / MiB / reads.raw)
    return best | {
        "batch_bytes": len(batch),
        "append_ratio": best["append"] / best["raw_write"],
        "read_ratio": best["read"] / best["raw_read"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=128, help="MiB appended per run")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="directory on the disk to test")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="trilog-bench-", dir=args.dir))
    try:
        results = {
            name: bench_size(root, size, args.mib, args.repeat) for name, size in SIZES.items()
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary: dict[str, float] = {}
    for name, r in results.items():
        say(
            f"{name} values, {r['batch_bytes']} B batches: "
            f"append {r['append']:.0f} MB/s vs raw write {r['raw_write']:.0f} MB/s "
            f"({r['append_ratio']:.2f}); "
            f"read {r['read']:.0f} MB/s vs raw read {r['raw_read']:.0f} MB/s "
            f"({r['read_ratio']:.2f})"
        )
        for key in ("append", "raw_write", "read", "raw_read"):
            summary[f"{key}_{name}_mb_s"] = round(r[key], 1)
    # Each size moved the same bytes, so the overall rate is the harmonic mean.
    for key in ("append", "raw_write", "read", "raw_read"):
        rates = [r[key] for r in results.values()]
        summary[f"{key}_mb_s"] = round(statistics.harmonic_mean(rates), 1)
    # Ratios are the worse of the two sizes: the goal must hold for both.
    summary["append_vs_raw"] = round(min(r["append_ratio"] for r in results.values()), 3)
    summary["read_vs_raw"] = round(min(r["read_ratio"] for r in results.values()), 3)
    for name, r in results.items():
        summary[f"append_vs_raw_{name}"] = round(r["append_ratio"], 3)
        summary[f"read_vs_raw_{name}"] = round(r["read_ratio"], 3)
    say("MB/s are MiB/s; writes include one final fsync on both sides; reads hit page cache.")
    ordered = [
        "append_mb_s",
        "raw_write_mb_s",
        "append_vs_raw",
        "read_mb_s",
        "raw_read_mb_s",
        "read_vs_raw",
    ]
    say(
        json.dumps(
            {k: summary[k] for k in ordered}
            | {k: v for k, v in summary.items() if k not in ordered}
        )
    )


if __name__ == "__main__":
    main()
