"""Leader and follower replicas of one partition, wired by hand over real logs:
high watermark, acks=all release, ISR shrink and expansion, KIP-101 truncation."""

import pytest

from broker.log.log import Log
from broker.log.log_config import LogConfig
from broker.replication.partition import Assignment, Partition
from broker.replication.producer_state import ProducerStateManager
from protocol.errors import ErrorCode
from protocol.records import build_batch, iter_records

LAG_MS = 10_000


def replica(tmp_path, node_id, *, min_isr=2) -> Partition:
    log_ = Log(tmp_path / f"n{node_id}" / "t-0", LogConfig(), now_ms=0)
    return Partition(
        "t",
        0,
        log_,
        ProducerStateManager(),
        node_id=node_id,
        max_message_bytes=1 << 20,
        min_insync_replicas=min_isr,
        lag_time_max_ms=LAG_MS,
    )


def batch(*values):
    return build_batch([(None, v, (), 1000) for v in values])


def replicate(leader: Partition, follower: Partition, now_ms: int) -> None:
    """One follower fetch round: report position, copy the leader's bytes."""
    leader.on_follower_fetch(follower.node_id, follower.log.log_end_offset, now_ms)
    data = leader.log.read(follower.log.log_end_offset, 1 << 20).data
    follower.append_as_follower(bytes(data), leader.high_watermark, now_ms)


@pytest.fixture
def trio_of_replicas(tmp_path):
    nodes = {n: replica(tmp_path, n) for n in (1, 2, 3)}
    assignment = Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3))
    for node in nodes.values():
        node.become(assignment, now_ms=0)
    return nodes


def test_high_watermark_follows_the_slowest_isr_member(trio_of_replicas):
    leader, f2, f3 = trio_of_replicas[1], trio_of_replicas[2], trio_of_replicas[3]
    result = leader.append_as_leader(batch(b"a", b"b"), now_ms=1, acks=-1)
    assert result.last_offset == 1 and leader.high_watermark == 0
    replicate(leader, f2, 2)
    assert leader.high_watermark == 0  # 3 has not fetched
    replicate(leader, f3, 3)
    replicate(leader, f2, 4)  # 2's next fetch carries its new log end
    leader.on_follower_fetch(3, f3.log.log_end_offset, 5)
    assert leader.high_watermark == 2
    replicate(leader, f2, 6)
    assert f2.high_watermark == 2  # followers learn the HW from the leader


def test_acks_all_released_when_replicated_and_timed_out_otherwise(trio_of_replicas):
    leader, f2, f3 = trio_of_replicas[1], trio_of_replicas[2], trio_of_replicas[3]
    result = leader.append_as_leader(batch(b"a"), now_ms=0, acks=-1)
    leader.leader.add_waiter(7, result.last_offset, deadline_ms=1000)
    leader.leader.add_waiter(8, result.last_offset, deadline_ms=100)
    assert leader.leader.completions(50) == []
    [timed_out] = leader.leader.completions(100)
    assert (timed_out.request_id, timed_out.error) == (8, ErrorCode.REQUEST_TIMED_OUT)
    for f in (f2, f3):
        replicate(leader, f, 200)
        leader.on_follower_fetch(f.node_id, f.log.log_end_offset, 201)
    [done] = leader.leader.completions(202)
    assert (done.request_id, done.error) == (7, ErrorCode.NONE)


def test_lagging_follower_leaves_isr_then_rejoins(trio_of_replicas):
    leader, f2, f3 = trio_of_replicas[1], trio_of_replicas[2], trio_of_replicas[3]
    leader.append_as_leader(batch(b"a"), now_ms=0)
    replicate(leader, f2, 1000)
    leader.on_follower_fetch(2, f2.log.log_end_offset, 1001)
    assert leader.isr_proposal(LAG_MS) is None  # nobody lagging yet
    proposal = leader.isr_proposal(LAG_MS + 1)
    assert proposal.new_isr == (1, 2)  # 3 never fetched: out
    assert leader.isr_proposal(LAG_MS + 2) is None  # one proposal in flight at a time
    # while the shrink is pending the HW still waits for 3 (maximal ISR)
    assert leader.high_watermark == 0
    leader.become(Assignment(1, 0, 1, (1, 2, 3), (1, 2)), now_ms=LAG_MS + 3)
    leader.leader.advance_high_watermark()
    assert leader.high_watermark == 1
    replicate(leader, f3, LAG_MS + 4)
    leader.on_follower_fetch(3, f3.log.log_end_offset, LAG_MS + 5)
    assert leader.isr_proposal(LAG_MS + 6).new_isr == (1, 2, 3)


def test_acks_all_refused_below_min_isr_acks_1_accepted(tmp_path):
    leader = replica(tmp_path, 1, min_isr=2)
    leader.become(Assignment(1, 0, 0, (1, 2, 3), (1,)), now_ms=0)
    refused = leader.append_as_leader(batch(b"a"), now_ms=0, acks=-1)
    assert refused.error is ErrorCode.NOT_ENOUGH_REPLICAS
    assert leader.append_as_leader(batch(b"a"), now_ms=0, acks=1).error is ErrorCode.NONE


def test_shrink_during_wait_gives_not_enough_replicas_after_append(trio_of_replicas):
    leader = trio_of_replicas[1]
    result = leader.append_as_leader(batch(b"a"), now_ms=0, acks=-1)
    leader.leader.add_waiter(1, result.last_offset, deadline_ms=10**9)
    assert leader.become(Assignment(1, 0, 1, (1, 2, 3), (1, 2)), now_ms=1) == []
    [done] = leader.become(Assignment(1, 0, 2, (1, 2, 3), (1,)), now_ms=2)
    assert done.error is ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND


def test_losing_leadership_fails_waiting_produces(trio_of_replicas):
    leader = trio_of_replicas[1]
    result = leader.append_as_leader(batch(b"a"), now_ms=0, acks=-1)
    leader.leader.add_waiter(5, result.last_offset, deadline_ms=10**9)
    [failed] = leader.become(Assignment(2, 1, 1, (1, 2, 3), (2, 3)), now_ms=1)
    assert failed.error is ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert leader.append_as_leader(batch(b"b"), 2).error is ErrorCode.NOT_LEADER_OR_FOLLOWER


def test_kip101_divergent_follower_truncates_to_the_new_leaders_epoch_end(tmp_path):
    """Leader 1 (epoch 0) writes a, b; only a reaches 2. 1 dies; 2 leads at epoch 1
    and writes c. 1 comes back as follower: its b (offset 1) diverges and must go."""
    n1, n2 = replica(tmp_path, 1), replica(tmp_path, 2)
    epoch0 = Assignment(1, 0, 0, (1, 2), (1, 2))
    for n in (n1, n2):
        n.become(epoch0, 0)
    n1.append_as_leader(batch(b"a"), 1)
    replicate(n1, n2, 2)
    n1.append_as_leader(batch(b"b"), 3)  # never replicated
    epoch1 = Assignment(2, 1, 1, (1, 2), (2,))
    n2.become(epoch1, 4)
    n2.append_as_leader(batch(b"c"), 5)
    n1.become(epoch1, 6)
    assert n1.needs_truncation
    end_epoch, end_offset = n2.log.epoch_cache.end_offset_for(
        n1.log.latest_epoch, n2.log.log_end_offset
    )
    assert (end_epoch, end_offset) == (0, 1)
    n1.truncate_after_epoch_check(end_epoch, end_offset, 7)
    assert n1.log.log_end_offset == 1 and not n1.needs_truncation
    replicate(n2, n1, 8)
    values = [r.value for r in iter_records(n1.log.read(0, 1 << 20).data)]
    assert values == [b"a", b"c"]
    assert bytes(n1.log.read(0, 1 << 20).data) == bytes(n2.log.read(0, 1 << 20).data)
