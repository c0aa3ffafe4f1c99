"""LeaderEpochCache: Kafka's LeaderEpochFileCache semantics and persistence."""

import pytest

from broker.log.checkpoints import CorruptCheckpointError
from broker.log.epoch_cache import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET, LeaderEpochCache

UNDEFINED = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)


@pytest.fixture
def cache(tmp_path):
    return LeaderEpochCache(tmp_path)


def test_assign_keeps_first_offset_of_each_epoch_and_ignores_older_epochs(cache):
    assert cache.assign(1, 0)
    assert not cache.assign(1, 5)
    assert cache.assign(3, 10)
    assert not cache.assign(2, 20)
    assert not cache.assign(3, 30)
    assert cache.entries == [(1, 0), (3, 10)]
    assert cache.latest_epoch == 3 and cache.earliest_epoch == 1


def test_newer_epoch_starting_below_existing_entries_replaces_them(cache):
    cache.assign(1, 0)
    cache.assign(2, 10)
    cache.assign(3, 20)
    assert cache.assign(4, 10)
    assert cache.entries == [(1, 0), (4, 10)]


def test_entries_persist_in_kafka_format(tmp_path, cache):
    cache.assign(0, 0)
    cache.assign(4, 100)
    assert (tmp_path / "leader-epoch-checkpoint").read_text() == "0\n2\n0 0\n4 100\n"
    assert LeaderEpochCache(tmp_path).entries == [(0, 0), (4, 100)]


def test_end_offset_for_follows_offset_for_leader_epoch(cache):
    assert cache.end_offset_for(1, 50) == UNDEFINED  # empty cache
    cache.assign(1, 0)
    cache.assign(3, 10)
    cache.assign(5, 30)
    assert cache.end_offset_for(5, 50) == (5, 50)  # latest: log end offset
    assert cache.end_offset_for(3, 50) == (3, 30)  # start of the next epoch
    assert cache.end_offset_for(1, 50) == (1, 10)
    assert cache.end_offset_for(4, 50) == (3, 30)  # unknown epoch: the one below, next start
    assert cache.end_offset_for(2, 50) == (1, 10)
    assert cache.end_offset_for(0, 50) == (0, 0)  # below every epoch: earliest start
    assert cache.end_offset_for(6, 50) == UNDEFINED  # above every epoch
    assert cache.end_offset_for(UNDEFINED_EPOCH, 50) == UNDEFINED


def test_truncate_from_end_drops_entries_at_or_after(cache):
    for epoch, offset in [(1, 0), (2, 10), (3, 20)]:
        cache.assign(epoch, offset)
    cache.truncate_from_end(20)
    assert cache.entries == [(1, 0), (2, 10)]
    cache.truncate_from_end(11)
    assert cache.entries == [(1, 0), (2, 10)]
    cache.truncate_from_end(0)
    assert cache.entries == []


def test_truncate_from_start_keeps_covering_entry_moved_up(tmp_path, cache):
    for epoch, offset in [(1, 0), (2, 10), (3, 20)]:
        cache.assign(epoch, offset)
    cache.truncate_from_start(5)
    assert cache.entries == [(1, 5), (2, 10), (3, 20)]
    cache.truncate_from_start(15)
    assert cache.entries == [(2, 15), (3, 20)]
    cache.truncate_from_start(20)
    assert cache.entries == [(3, 20)]
    cache.truncate_from_start(100)
    assert cache.entries == [(3, 100)]
    assert LeaderEpochCache(tmp_path).entries == [(3, 100)]


def test_clear(tmp_path, cache):
    cache.assign(1, 0)
    cache.clear()
    assert cache.entries == [] and LeaderEpochCache(tmp_path).entries == []


def test_corrupt_checkpoint_raises(tmp_path):
    (tmp_path / "leader-epoch-checkpoint").write_text("0\n2\n1 0\n")
    with pytest.raises(CorruptCheckpointError):
        LeaderEpochCache(tmp_path)
