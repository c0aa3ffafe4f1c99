"""Crash tests: SIGKILL mid-append, torn tails at every byte, flipped bytes, broken indexes.

After any of these, reopening must keep every whole batch written before the
damage, drop everything from the first damaged batch on, continue offsets
densely and leave indexes that agree with a scan of the log.
"""

from __future__ import annotations

import logging
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from array import array
from pathlib import Path

import pytest
from crash_writer import CONFIG as WRITER_CONFIG
from crash_writer import TEMPLATES
from log_helpers import assert_log_consistent, make_batch, scan_file

from broker.log.log import Log
from broker.log.log_config import LogConfig
from protocol.batch import BatchHeader

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]
CONFIG = LogConfig(segment_bytes=4096, index_interval_bytes=256, retention_ms=-1)


def abandon(log: Log) -> None:
    """Drop a log without a clean close, as a crash would (no flush, no checkpoint)."""
    for segment in log.segments:
        segment.close()


def read_acks(proc: subprocess.Popen, count: int, deadline: float) -> int:
    """Read ``count`` acknowledged offsets from the writer; returns the last one."""
    fd = proc.stdout.fileno()
    pending, last = b"", -1
    while count > 0:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "writer did not acknowledge in time"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        assert chunk, f"writer exited early: {proc.stderr.read().decode(errors='replace')}"
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            last = int(line)
            count -= 1
    return last


def assert_bytes_match_templates(log: Log) -> None:
    """Every batch on disk is a template with only offset and epoch rewritten."""
    bodies = {t[16:] for t in TEMPLATES}
    for segment in log.segments:
        data = Path(segment.path).read_bytes()
        for pos, header in scan_file(segment.path):
            assert data[pos + 16 : pos + header.size] in bodies, (segment.path, pos)


def assert_epochs_match(log: Log, headers: list[BatchHeader]) -> None:
    entries = log.epoch_cache.entries
    for header in headers:
        covering = [e for e, start in entries if start <= header.base_offset]
        assert covering and covering[-1] == header.partition_leader_epoch, (header, entries)


def test_sigkill_mid_append_keeps_every_acknowledged_batch(tmp_path):
    directory = tmp_path / "crash-0"
    rng = random.Random(20261126)
    acknowledged = -1
    for round_ in range(20):
        stderr = open(tmp_path / f"writer-{round_}.err", "w+b")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(directory), str(round_)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=ROOT,
        )
        try:
            target = rng.randint(1, 60)
            last = read_acks(proc, target, deadline=time.monotonic() + 60)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
            proc.stdout.close()
            stderr.close()
        assert last > acknowledged
        acknowledged = last
        log = Log(directory, WRITER_CONFIG, now_ms=0)
        try:
            assert log.log_end_offset > acknowledged
            headers = assert_log_consistent(log)
            assert_bytes_match_templates(log)
            assert_epochs_match(log, headers)
            assert headers[-1].partition_leader_epoch == round_
        finally:
            log.close() if round_ % 2 else abandon(log)


def build_log(directory: Path, batches: list[bytes]) -> list[BatchHeader]:
    log = Log(directory, CONFIG, now_ms=0)
    for i, batch in enumerate(batches):
        log.append_as_leader(batch, i // 3, now_ms=0)
    log.close()
    return [h for s in sorted(directory.glob("*.log")) for _, h in scan_file(s)]


def varied_batches(n: int) -> list[bytes]:
    return [
        make_batch(1 + i % 5, value_size=10 + 37 * (i % 4), timestamp=100 * i) for i in range(n)
    ]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def restore(directory: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(directory)
    directory.mkdir()
    for name, data in files.items():
        (directory / name).write_bytes(data)


def test_cut_at_every_byte_of_the_last_batch(tmp_path):
    directory = tmp_path / "cut-0"
    headers = build_log(directory, varied_batches(18))
    active = max(directory.glob("*.log"))
    original = snapshot(directory)
    last_start = scan_file(active)[-1][0]
    size = len(original[active.name])
    assert headers[-1].size == size - last_start and len(list(directory.glob("*.log"))) > 1
    for cut in range(last_start, size):
        restore(directory, original)
        with open(active, "r+b") as f:
            f.truncate(cut)
        log = Log(directory, CONFIG, now_ms=0)
        try:
            assert log.log_end_offset == headers[-1].base_offset, cut
            assert log.active_segment.size == last_start
            assert_log_consistent(log)
            if cut % 64 == 0:
                assert (
                    log.append_as_leader(make_batch(2), 9, 0).first_offset
                    == headers[-1].base_offset
                )
        finally:
            abandon(log)


def test_cut_inside_an_older_segment_drops_the_later_ones(tmp_path, caplog):
    directory = tmp_path / "cut-0"
    build_log(directory, varied_batches(18))
    (directory / "recovery-point-offset-checkpoint").unlink(missing_ok=True)
    (tmp_path / "recovery-point-offset-checkpoint").unlink()
    first = min(directory.glob("*.log"))
    batches = scan_file(first)
    with open(first, "r+b") as f:
        f.truncate(batches[-1][0] + 20)
    with caplog.at_level(logging.WARNING):
        log = Log(directory, CONFIG, now_ms=0)
    try:
        assert [s.path for s in log.segments] == [str(first)]
        assert log.log_end_offset == batches[-1][1].base_offset
        assert_log_consistent(log)
    finally:
        abandon(log)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert first.name in warnings[0].getMessage()
    assert f"offset {batches[-1][1].base_offset}" in warnings[0].getMessage()


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
def test_cut_index_files_at_every_byte(tmp_path, suffix):
    directory = tmp_path / "cut-0"
    headers = build_log(directory, varied_batches(18))
    index = max(directory.glob(f"*{suffix}"), key=lambda p: p.stat().st_size)
    original = snapshot(directory)
    assert len(original[index.name]) >= 16
    for cut in range(len(original[index.name])):
        restore(directory, original)
        with open(index, "r+b") as f:
            f.truncate(cut)
        log = Log(directory, CONFIG, now_ms=0)
        try:
            assert log.log_end_offset == headers[-1].last_offset + 1
            # a shorter but whole index of a trusted segment is still a valid sparse index
            assert_log_consistent(log, exact_indexes=cut % 8 != 0)
        finally:
            abandon(log)


def test_flipped_byte_in_tail_batch_truncates_from_that_batch(tmp_path):
    """A crash (no clean-close recovery point) left a damaged last batch.

    Data below the recovery point is trusted without a CRC check, as Kafka
    trusts a cleanly shut down log, so the checkpoint is removed here.
    """
    directory = tmp_path / "flip-0"
    headers = build_log(directory, varied_batches(18))
    (tmp_path / "recovery-point-offset-checkpoint").unlink()
    active = max(directory.glob("*.log"))
    original = snapshot(directory)
    last_start = scan_file(active)[-1][0]
    for at in range(last_start, len(original[active.name])):
        if 12 <= at - last_start < 16:
            continue  # partitionLeaderEpoch: outside the CRC, as in Kafka
        restore(directory, original)
        data = bytearray(original[active.name])
        data[at] ^= 0x5A
        active.write_bytes(bytes(data))
        log = Log(directory, CONFIG, now_ms=0)
        try:
            assert log.log_end_offset == headers[-1].base_offset, at
            assert log.active_segment.size == last_start
            assert_log_consistent(log)
        finally:
            abandon(log)


def test_flipped_byte_mid_segment_truncates_from_the_damaged_batch(tmp_path):
    directory = tmp_path / "flip-0"
    build_log(directory, varied_batches(18))
    (tmp_path / "recovery-point-offset-checkpoint").unlink()
    first = min(directory.glob("*.log"))
    batches = scan_file(first)
    pos, damaged = batches[2]
    data = bytearray(first.read_bytes())
    data[pos + damaged.size // 2] ^= 1
    first.write_bytes(bytes(data))
    log = Log(directory, CONFIG, now_ms=0)
    try:
        assert log.log_end_offset == damaged.base_offset and len(log.segments) == 1
        assert_log_consistent(log)
    finally:
        abandon(log)


@pytest.mark.parametrize("checkpoint", [True, False])
@pytest.mark.parametrize("damage", ["delete", "garble", "shift"])
def test_index_files_deleted_or_garbled_are_rebuilt(tmp_path, damage, checkpoint):
    directory = tmp_path / "idx-0"
    headers = build_log(directory, varied_batches(40))
    if not checkpoint:
        (tmp_path / "recovery-point-offset-checkpoint").unlink()
    rng = random.Random(7)
    for path in list(directory.glob("*.index")) + list(directory.glob("*.timeindex")):
        if damage == "delete":
            path.unlink()
        elif damage == "garble":
            path.write_bytes(rng.randbytes(len(path.read_bytes()) or 24))
        elif path.suffix == ".index":  # plausible entries, positions one byte off
            entries = array("i", path.read_bytes())
            entries.byteswap()
            entries = array("i", [v + (i % 2) for i, v in enumerate(entries)])
            entries.byteswap()
            path.write_bytes(entries.tobytes())
    log = Log(directory, CONFIG, now_ms=0)
    try:
        assert log.log_end_offset == headers[-1].last_offset + 1
        assert_log_consistent(log)
        offset = 0
        while offset < log.log_end_offset:
            result = log.read(offset, 300)
            assert result.first_offset <= offset
            offset = [h for h in headers if h.base_offset == result.first_offset][0].last_offset
            offset = max(offset, result.first_offset) + 1
    finally:
        log.close()
