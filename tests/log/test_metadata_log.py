"""The controller quorum's durable Raft storage: what was applied is what reopens."""

from broker.log.metadata_log import DurableRaftLog
from broker.raft.messages import Entry, Snapshot
from broker.raft.storage import AppendOps, HardState, MemoryStorage, SaveSnapshot


def entries(first, last, term, tag=b"x"):
    return tuple(Entry(i, term, tag + str(i).encode()) for i in range(first, last + 1))


def same(a, b):
    assert (a.first_index(), a.last_index()) == (b.first_index(), b.last_index())
    assert a.hard_state() == b.hard_state() and a.snapshot() == b.snapshot()
    if a.last_index() >= a.first_index():
        span = (a.first_index(), a.last_index() + 1, 1 << 30)
        assert a.entries(*span) == b.entries(*span)


def test_operations_survive_reopen_exactly(tmp_path):
    ops = [
        HardState(1, 1),
        AppendOps(entries(1, 5, 1)),
        HardState(2, None),
        AppendOps(entries(4, 6, 2, b"y")),  # overwrite a conflicting suffix
        AppendOps((Entry(7, 2, b""),)),  # a leader's no-op
        SaveSnapshot(Snapshot(5, 2, b"image-at-5")),
        AppendOps(entries(8, 9, 2)),
    ]
    durable = DurableRaftLog(tmp_path, now_ms=0)
    memory = MemoryStorage()
    for op in ops:
        durable.apply(op)
        memory.apply(op)
        same(durable, memory)
    durable.close()
    reopened = DurableRaftLog(tmp_path, now_ms=0)
    same(reopened, memory)
    assert reopened.term_at(5) == 2 and reopened.term_at(4) is None
    assert reopened.entries(7, 8, 100)[0].data == b""
    reopened.close()


def test_snapshot_past_the_log_replaces_it(tmp_path):
    durable = DurableRaftLog(tmp_path, now_ms=0)
    durable.apply(AppendOps(entries(1, 3, 1)))
    durable.apply(SaveSnapshot(Snapshot(10, 3, b"far ahead")))
    durable.apply(AppendOps(entries(11, 12, 3)))
    durable.close()
    reopened = DurableRaftLog(tmp_path, now_ms=0)
    assert (reopened.first_index(), reopened.last_index()) == (11, 12)
    assert reopened.snapshot().data == b"far ahead"
    reopened.close()
