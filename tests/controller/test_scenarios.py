"""Controller scenarios, read as scripts: one action per line, the expected
partition state beneath it. The harness commits every result and checks that
replaying the committed records gives the controller's working image.
"""

from __future__ import annotations

import logging

import pytest

from broker.controller.controller import ControllerConfig, ElectionType, ToBroker
from protocol.errors import ErrorCode
from tests.controller.harness import Harness

SESSION_MS = 9000
NO_REBALANCE = ControllerConfig(auto_leader_rebalance_enable=False)


def test_missed_heartbeats_fence_a_broker_and_it_comes_back() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3)
    h.create("t", partitions=3, factor=3, assignments={0: (1, 2, 3), 1: (2, 3, 1), 2: (3, 1, 2)})
    assert h.describe("t", 0) == "leader=1 epoch=0 isr=[1, 2, 3] replicas=[1, 2, 3]"

    reports = h.advance(SESSION_MS + 2000, silent=(1,))
    assert [r.fenced for r in reports if r.fenced] == [(1,)]
    assert h.controller.image.brokers[1].fenced
    assert h.describe("t", 0) == "leader=2 epoch=1 isr=[2, 3] replicas=[1, 2, 3]"
    assert h.describe("t", 1) == "leader=2 epoch=0 isr=[2, 3] replicas=[2, 3, 1]"
    assert h.describe("t", 2) == "leader=3 epoch=0 isr=[3, 2] replicas=[3, 1, 2]"

    h.register(1)  # same incarnation: same epoch, no records
    behind = h.controller.heartbeat(1, h.epochs[1], -1, False, False, h.now_ms)
    assert h.commit(behind).is_fenced  # not caught up on metadata yet
    assert not h.heartbeat(1).is_fenced
    assert h.describe("t", 0) == "leader=2 epoch=1 isr=[2, 3] replicas=[1, 2, 3]"

    assert h.alter_isr("t", 0, (2, 3, 1)).error is ErrorCode.NONE  # follower 1 caught up
    assert h.elect("t", 0, ElectionType.PREFERRED).leader == 1
    assert h.describe("t", 0) == "leader=1 epoch=2 isr=[2, 3, 1] replicas=[1, 2, 3]"


def test_offline_partition_stays_offline_unless_unclean_is_enabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3)
    h.create("t", assignments={0: (1, 2, 3)})
    h.alter_isr("t", 0, (1,))  # followers fell behind
    assert h.describe("t", 0) == "leader=1 epoch=0 isr=[1] replicas=[1, 2, 3]"

    h.advance(SESSION_MS + 2000, silent=(1,))
    assert h.describe("t", 0) == "leader=-1 epoch=1 isr=[1] replicas=[1, 2, 3]"
    result = h.elect("t", 0, ElectionType.PREFERRED)
    assert result.error is ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
    h.advance(20_000, silent=(1,))
    assert h.describe("t", 0) == "leader=-1 epoch=1 isr=[1] replicas=[1, 2, 3]"

    with caplog.at_level(logging.WARNING):
        result = h.elect("t", 0, ElectionType.UNCLEAN)
    assert (result.error, result.leader, result.data_may_be_lost) == (ErrorCode.NONE, 2, True)
    assert h.describe("t", 0) == "leader=2 epoch=2 isr=[2] replicas=[1, 2, 3]"
    assert "UNCLEAN" in caplog.text


def test_unclean_enabled_elects_a_live_replica_on_its_own() -> None:
    h = Harness(
        ControllerConfig(auto_leader_rebalance_enable=False, unclean_leader_election_enable=True)
    )
    h.start(1, 2, 3)
    h.create("t", assignments={0: (1, 2, 3)})
    h.alter_isr("t", 0, (1,))

    reports = h.advance(SESSION_MS + 2000, silent=(1,))
    [unclean] = [u for r in reports for u in r.unclean]
    assert (unclean.topic, unclean.partition, unclean.leader) == ("t", 0, 2)
    assert h.describe("t", 0) == "leader=2 epoch=1 isr=[2] replicas=[1, 2, 3]"


def test_the_last_isr_member_returning_leads_again_cleanly() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2)
    h.create("t", assignments={0: (1, 2)})
    h.alter_isr("t", 0, (1,))
    h.advance(SESSION_MS + 2000, silent=(1,))
    assert h.describe("t", 0) == "leader=-1 epoch=1 isr=[1] replicas=[1, 2]"

    h.heartbeat(1)  # caught up: unfenced, and the offline partition elects it
    assert h.describe("t", 0) == "leader=1 epoch=2 isr=[1] replicas=[1, 2]"


def test_controlled_shutdown_moves_leadership_before_saying_yes() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3)
    h.create("t", partitions=2, assignments={0: (1, 2, 3), 1: (2, 1, 3)})

    reply = h.heartbeat(1, want_shutdown=True)
    assert (reply.in_controlled_shutdown, reply.should_shut_down) == (True, False)
    assert h.describe("t", 0) == "leader=2 epoch=1 isr=[2, 3] replicas=[1, 2, 3]"
    assert h.describe("t", 1) == "leader=2 epoch=0 isr=[2, 3] replicas=[2, 1, 3]"
    assert h.alter_isr("t", 0, (2, 3, 1)).error is ErrorCode.INELIGIBLE_REPLICA

    h.heartbeat(2)
    h.heartbeat(3)  # both have replayed the leadership changes
    reply = h.heartbeat(1, want_shutdown=True)
    assert (reply.is_fenced, reply.should_shut_down) == (True, True)


def test_controlled_shutdown_waits_for_the_others_to_see_the_new_leaders() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2)
    h.create("t", assignments={0: (1, 2)})
    assert not h.heartbeat(1, want_shutdown=True).should_shut_down
    assert not h.heartbeat(1, want_shutdown=True).should_shut_down  # 2 has not heard yet
    h.heartbeat(2)
    assert h.heartbeat(1, want_shutdown=True).should_shut_down


def test_reassign_to_a_new_order_changes_only_the_preferred_leader() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3)
    h.create("t", assignments={0: (1, 2, 3)})

    h.commit(h.controller.alter_partition_reassignments("t", 0, (2, 3, 1)))
    assert h.describe("t", 0) == "leader=1 epoch=0 isr=[1, 2, 3] replicas=[2, 3, 1]"
    assert h.controller.list_partition_reassignments() == []
    assert h.elect("t", 0, ElectionType.PREFERRED).leader == 2
    assert h.describe("t", 0) == "leader=2 epoch=1 isr=[1, 2, 3] replicas=[2, 3, 1]"


def test_reassign_adds_then_removes_once_the_new_replica_is_in_sync() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3, 4)
    h.create("t", assignments={0: (1, 2, 3)})

    h.commit(h.controller.alter_partition_reassignments("t", 0, (2, 3, 4)))
    assert h.describe("t", 0) == (
        "leader=1 epoch=0 isr=[1, 2, 3] replicas=[2, 3, 4, 1] adding=[4] removing=[1]"
    )
    [progress] = h.controller.list_partition_reassignments()
    assert (progress.adding_replicas, progress.removing_replicas) == ((4,), (1,))
    again = h.controller.alter_partition_reassignments("t", 0, (2, 3, 4))
    assert again.records == ()  # same target twice: nothing to do

    reply = h.alter_isr("t", 0, (1, 2, 3, 4))  # 4 caught up: completes, 1 leaves
    assert reply.error is ErrorCode.NEW_LEADER_ELECTED
    assert h.describe("t", 0) == "leader=2 epoch=1 isr=[2, 3, 4] replicas=[2, 3, 4]"
    assert h.controller.list_partition_reassignments() == []


def test_cancel_a_reassignment_midway() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3, 4)
    h.create("t", assignments={0: (1, 2, 3)})
    cancel = h.controller.alter_partition_reassignments("t", 0, None)
    assert h.commit(cancel).error is ErrorCode.NO_REASSIGNMENT_IN_PROGRESS

    h.commit(h.controller.alter_partition_reassignments("t", 0, (2, 3, 4)))
    h.commit(h.controller.alter_partition_reassignments("t", 0, None))
    # Kafka's revert keeps the target's order for the replicas that stay; dropping
    # replica 4 bumps the leader epoch so 4 can no longer fetch as a follower.
    assert h.describe("t", 0) == "leader=1 epoch=1 isr=[1, 2, 3] replicas=[2, 3, 1]"
    assert h.controller.list_partition_reassignments() == []


def test_stale_alter_partition_is_refused() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3)
    h.create("t", assignments={0: (1, 2, 3)})
    old = h.state("t", 0)
    old_leader_epoch, old_partition_epoch = old.leader_epoch, old.partition_epoch
    h.alter_isr("t", 0, (1, 2))  # partition epoch 1

    stale = h.controller.alter_partition(
        1, h.epochs[1], "t", 0, old_leader_epoch, old_partition_epoch, (1,)
    )
    assert h.commit(stale).error is ErrorCode.INVALID_UPDATE_VERSION
    assert h.elect("t", 0, ToBroker(2)).leader == 2  # leader epoch 1
    fenced = h.controller.alter_partition(1, h.epochs[1], "t", 0, 0, 1, (1,))
    assert h.commit(fenced).error is ErrorCode.FENCED_LEADER_EPOCH
    assert h.describe("t", 0) == "leader=2 epoch=1 isr=[1, 2] replicas=[1, 2, 3]"


def test_auto_rebalance_moves_leaders_back_to_preferred_replicas() -> None:
    h = Harness(ControllerConfig(leader_imbalance_check_interval_ms=10_000))
    h.start(1, 2, 3)
    h.create("t", partitions=3, assignments={0: (1, 2, 3), 1: (1, 3, 2), 2: (2, 3, 1)})
    h.advance(SESSION_MS + 2000, silent=(1,))
    assert (h.state("t", 0).leader, h.state("t", 1).leader) == (2, 3)
    h.register(1)
    h.heartbeat(1)
    h.alter_isr("t", 0, (2, 3, 1))
    h.alter_isr("t", 1, (3, 2, 1))

    reports = h.advance(10_000)
    assert sum(r.rebalanced for r in reports) == 2
    assert (h.state("t", 0).leader, h.state("t", 1).leader) == (1, 1)


def test_failover_gives_every_broker_a_full_session_of_grace() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2)
    h.advance(SESSION_MS - 1000, silent=(1,))  # 1 is nearly out of time...
    h.controller.reset_to(h.committed, h.committed.metadata_offset + 1, h.now_ms)  # ...failover
    reports = h.advance(SESSION_MS - 1000, silent=(1,))
    assert not any(r.fenced for r in reports)
    reports = h.advance(2000, silent=(1,))
    assert [r.fenced for r in reports if r.fenced] == [(1,)]
