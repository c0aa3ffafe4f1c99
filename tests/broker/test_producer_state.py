"""Idempotent producer bookkeeping: duplicates, gaps, fencing, bounds, snapshots."""

from broker.replication.producer_state import (
    BATCHES_RETAINED,
    ProducerStateManager,
    SequenceCheck,
)
from protocol.batch import parse_header
from protocol.records import build_batch


def header(pid=7, epoch=0, seq=0, count=1):
    batch = build_batch(
        [(None, b"v", (), 1000)] * count,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )
    return parse_header(batch)


def test_in_sequence_batches_append_and_duplicates_return_original_offsets():
    state = ProducerStateManager()
    first = header(seq=0, count=3)
    assert state.check(first).check is SequenceCheck.APPEND
    state.record(first, 100)
    second = header(seq=3, count=2)
    assert state.check(second).check is SequenceCheck.APPEND
    state.record(second, 103)
    verdict = state.check(header(seq=0, count=3))
    assert verdict.check is SequenceCheck.DUPLICATE
    assert (verdict.duplicate_of.first_offset, verdict.duplicate_of.last_offset) == (100, 102)


def test_gap_is_out_of_order():
    state = ProducerStateManager()
    state.record(header(seq=0), 0)
    verdict = state.check(header(seq=2))
    assert verdict.check is SequenceCheck.OUT_OF_ORDER
    assert "expected 1, got 2" in verdict.detail


def test_older_epoch_is_fenced_and_new_epoch_must_start_at_zero():
    state = ProducerStateManager()
    state.record(header(epoch=3, seq=0), 0)
    assert state.check(header(epoch=2, seq=1)).check is SequenceCheck.FENCED_EPOCH
    assert state.check(header(epoch=4, seq=5)).check is SequenceCheck.OUT_OF_ORDER
    assert state.check(header(epoch=4, seq=0)).check is SequenceCheck.APPEND


def test_unknown_producer_may_start_anywhere():
    # Kafka accepts it: the producer's earlier batches may have been deleted by retention.
    assert ProducerStateManager().check(header(seq=42)).check is SequenceCheck.APPEND


def test_sequence_wraps_at_int32_max():
    state = ProducerStateManager()
    state.record(header(seq=2**31 - 1), 0)
    assert state.check(header(seq=0)).check is SequenceCheck.APPEND


def test_only_recent_batches_are_remembered():
    state = ProducerStateManager()
    for i in range(BATCHES_RETAINED + 1):
        state.record(header(seq=i), i)
    assert len(state.entry(7).batches) == BATCHES_RETAINED
    assert state.check(header(seq=0)).check is SequenceCheck.OUT_OF_ORDER


def test_producer_count_is_bounded_least_recent_first():
    state = ProducerStateManager(producers_max=2)
    for pid in (1, 2, 3):
        state.record(header(pid=pid), pid)
    assert len(state) == 2
    assert state.entry(1) is None and state.entry(3) is not None


def test_snapshot_round_trip_and_truncate():
    state = ProducerStateManager()
    state.record(header(seq=0, count=2), 10)
    state.record(header(seq=2, count=2), 12)
    again = ProducerStateManager()
    again.load_snapshot(state.to_snapshot())
    assert again.check(header(seq=2, count=2)).check is SequenceCheck.DUPLICATE
    again.truncate_to(12)
    assert again.check(header(seq=2, count=2)).check is SequenceCheck.APPEND


def test_non_idempotent_batches_are_not_tracked():
    state = ProducerStateManager()
    plain = parse_header(build_batch([(None, b"v", (), 1)]))
    assert state.check(plain).check is SequenceCheck.APPEND
    state.record(plain, 0)
    assert len(state) == 0
