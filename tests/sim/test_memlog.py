"""The simulator's in-memory partition log: Kafka's crash semantics and the same
leader-epoch answers as broker/log's file-based cache."""

from __future__ import annotations

import random
from pathlib import Path

from broker.log.epoch_cache import LeaderEpochCache
from protocol.batch import set_base_offset_and_epoch
from protocol.records import build_batch, iter_records
from tests.sim.memlog import MemoryEpochCache, MemoryLog, PartitionDisk


def batch(value: bytes) -> bytes:
    return build_batch([(None, value, (), 0)])


def values(log: MemoryLog) -> list[bytes]:
    return [r.value for r in iter_records(b"".join(log.batches))]


def test_process_crash_keeps_everything_the_os_got() -> None:
    disk = PartitionDisk()
    log = MemoryLog(disk, fsync_each_append=False)
    log.append_as_leader(batch(b"a"), 0, 0)
    log.append_as_leader(batch(b"b"), 1, 0)
    reopened = MemoryLog(disk, fsync_each_append=False)  # the process restarts
    assert values(reopened) == [b"a", b"b"]
    assert reopened.epoch_cache.entries == [(0, 0), (1, 1)]


def test_machine_crash_loses_unsynced_appends_and_cuts_a_torn_one() -> None:
    disk = PartitionDisk()
    log = MemoryLog(disk, fsync_each_append=False)
    log.append_as_leader(batch(b"a"), 0, 0)
    disk.file.sync()
    log.append_as_leader(batch(b"b") + batch(b"c"), 0, 0)
    rng = random.Random(3)
    disk.file.machine_crash(rng, torn_write_probability=1.0)  # keeps a, tears b+c
    reopened = MemoryLog(disk, fsync_each_append=False)
    assert values(reopened) in ([b"a"], [b"a", b"b"])
    assert reopened.log_end_offset == len(values(reopened))


def test_flush_every_append_survives_power_loss() -> None:
    disk = PartitionDisk()
    log = MemoryLog(disk, fsync_each_append=True)
    for value in (b"a", b"b", b"c"):
        log.append_as_leader(batch(value), 2, 0)
    disk.file.machine_crash(random.Random(1), torn_write_probability=1.0)
    assert values(MemoryLog(disk, fsync_each_append=True)) == [b"a", b"b", b"c"]


def test_power_loss_can_undo_a_truncation_and_recovery_rederives_epochs() -> None:
    disk = PartitionDisk()
    log = MemoryLog(disk, fsync_each_append=False)
    log.append_as_leader(batch(b"a"), 0, 0)
    log.append_as_leader(batch(b"b"), 1, 0)
    disk.file.sync()
    log.truncate_to(1, 0)  # KIP-101 truncation, not yet synced
    log.append_as_follower(_at(batch(b"c"), 1, 2), 0)
    assert log.epoch_cache.entries == [(0, 0), (2, 1)]
    disk.file.machine_crash(random.Random(0), torn_write_probability=0.0)
    reopened = MemoryLog(disk, fsync_each_append=False)
    if values(reopened) == [b"a", b"b"]:  # the truncation was lost: b is back
        assert reopened.epoch_cache.entries == [(0, 0), (1, 1)]


def _at(raw: bytes, offset: int, epoch: int) -> bytes:
    out = bytearray(raw)
    set_base_offset_and_epoch(out, 0, offset, epoch)
    return bytes(out)


def test_epoch_cache_answers_like_the_file_based_one(tmp_path: Path) -> None:
    rng = random.Random(11)
    for round_ in range(30):
        directory = tmp_path / f"t-{round_}"
        directory.mkdir()
        real = LeaderEpochCache(directory)
        ours = MemoryEpochCache(PartitionDisk())
        offset = epoch = 0
        for _ in range(20):
            match rng.randrange(3):
                case 0:
                    epoch += rng.randint(0, 2)
                    offset += rng.randint(0, 5)
                    assert real.assign(epoch, offset) == ours.assign(epoch, offset)
                case 1:
                    cut = rng.randint(0, offset + 1)
                    real.truncate_from_end(cut)
                    ours.truncate_from_end(cut)
                    offset = min(offset, cut)
                case _:
                    pass
            assert real.entries == ours.entries
            for asked in range(-1, epoch + 3):
                end = offset + rng.randint(0, 3)
                assert real.end_offset_for(asked, end) == ours.end_offset_for(asked, end)
