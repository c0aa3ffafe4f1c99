"""Each controller command: what it answers, what it records, what it refuses."""

from __future__ import annotations

import random

import pytest

from broker.controller.controller import (
    ControllerConfig,
    ElectionType,
    QuorumController,
    ToBroker,
)
from broker.controller.image import MetadataImage
from broker.controller.records import (
    Endpoint,
    PartitionChangeRecord,
    RegisterBrokerRecord,
)
from broker.controller.topics import NewTopic
from protocol.errors import ErrorCode
from tests.controller.harness import Harness

NO_REBALANCE = ControllerConfig(auto_leader_rebalance_enable=False)
LISTENERS = (Endpoint("PLAINTEXT", "localhost", 9092),)


def three_brokers() -> Harness:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3)
    h.create("t", assignments={0: (1, 2, 3)})
    return h


# -- configuration ---------------------------------------------------------------------


def test_config_defaults_are_kafkas() -> None:
    c = ControllerConfig()
    assert (c.broker_session_timeout_ms, c.broker_heartbeat_interval_ms) == (9000, 2000)
    assert (c.leader_imbalance_per_broker_percentage, c.leader_imbalance_check_interval_ms) == (
        10,
        300_000,
    )
    assert c.auto_leader_rebalance_enable and not c.unclean_leader_election_enable


@pytest.mark.parametrize(
    "bad",
    [
        {"broker_heartbeat_interval_ms": 9000},
        {"leader_imbalance_per_broker_percentage": 101},
        {"elections_per_call_max": 0},
    ],
)
def test_config_refuses_nonsense(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ControllerConfig(**bad)  # type: ignore[arg-type]


# -- registration and heartbeats -------------------------------------------------------


def test_registration_starts_fenced_with_the_offset_as_epoch() -> None:
    h = Harness()
    result = h.controller.register_broker(1, "a", LISTENERS, "r", 0)
    assert result.offset == 0 and result.response.broker_epoch == 0
    assert result.records == (RegisterBrokerRecord(1, "a", 0, LISTENERS, "r", fenced=True),)
    h.commit(result)
    assert h.controller.image.brokers[1].fenced


def test_same_incarnation_is_idempotent_and_may_amend_its_listeners() -> None:
    h = Harness()
    h.commit(h.controller.register_broker(1, "a", LISTENERS, None, 0))
    again = h.controller.register_broker(1, "a", LISTENERS, None, 0)
    assert again.records == () and again.response.broker_epoch == 0
    moved = (Endpoint("PLAINTEXT", "elsewhere", 9092),)
    amend = h.controller.register_broker(1, "a", moved, None, 0)
    assert amend.response.broker_epoch == 0 and len(amend.records) == 1
    h.commit(amend)
    assert h.controller.image.brokers[1].listeners == moved


def test_new_incarnation_gets_a_new_epoch_and_loses_its_leaderships() -> None:
    h = three_brokers()
    old_epoch = h.epochs[1]
    new_epoch = h.register(1, new_incarnation=True)
    assert new_epoch > old_epoch
    assert h.controller.image.brokers[1].fenced
    assert h.describe("t") == "leader=2 epoch=1 isr=[2, 3] replicas=[1, 2, 3]"
    stale = h.controller.heartbeat(1, old_epoch, 99, False, False, 0)
    assert stale.response.error is ErrorCode.STALE_BROKER_EPOCH and stale.records == ()


def test_registration_refuses_a_bad_id() -> None:
    result = Harness().controller.register_broker(-1, "a", LISTENERS, None, 0)
    assert result.response.error is ErrorCode.INVALID_REQUEST and result.records == ()


def test_heartbeat_from_an_unknown_broker() -> None:
    reply = Harness().controller.heartbeat(5, 0, 0, False, False, 0).response
    assert reply.error is ErrorCode.BROKER_ID_NOT_REGISTERED


def test_heartbeat_reports_catching_up() -> None:
    h = Harness()
    h.register(1)
    h.register(2)
    result = h.controller.heartbeat(2, h.epochs[2], 0, False, False, 0)
    assert (result.response.is_caught_up, result.response.is_fenced) == (False, True)
    assert result.records == ()


def test_a_broker_may_ask_to_be_fenced() -> None:
    h = three_brokers()
    reply = h.heartbeat(1, want_fence=True)
    assert reply.is_fenced and not reply.should_shut_down
    assert h.describe("t") == "leader=2 epoch=1 isr=[2, 3] replicas=[1, 2, 3]"
    assert h.heartbeat(1, want_fence=True).is_fenced  # stays fenced while it asks


def test_a_fenced_broker_shuts_down_at_once() -> None:
    h = Harness()
    h.register(1)
    reply = h.heartbeat(1, want_shutdown=True)
    assert reply.should_shut_down and reply.is_fenced


def test_a_broker_leading_nothing_shuts_down_at_once() -> None:
    h = three_brokers()
    reply = h.heartbeat(3, want_shutdown=True)
    assert reply.should_shut_down and reply.is_fenced
    assert h.describe("t") == "leader=1 epoch=0 isr=[1, 2] replicas=[1, 2, 3]"


def test_unregister() -> None:
    h = three_brokers()
    assert h.commit(h.controller.unregister_broker(9)) is ErrorCode.BROKER_ID_NOT_REGISTERED
    assert h.commit(h.controller.unregister_broker(1)) is ErrorCode.NONE
    assert 1 not in h.controller.image.brokers
    assert h.describe("t") == "leader=2 epoch=1 isr=[2, 3] replicas=[1, 2, 3]"


# -- AlterPartition --------------------------------------------------------------------


def alter(h: Harness, broker: int, **override: object) -> ErrorCode:
    s = h.state("t")
    args = {
        "broker_epoch": h.epochs.get(broker, 0),
        "topic": "t",
        "partition": 0,
        "leader_epoch": s.leader_epoch,
        "partition_epoch": s.partition_epoch,
        "new_isr": (1, 2),
    } | override
    result = h.controller.alter_partition(broker, **args)  # type: ignore[arg-type]
    return h.commit(result).error


def test_alter_partition_shrinks_and_expands_the_isr() -> None:
    h = three_brokers()
    result = h.controller.alter_partition(1, h.epochs[1], "t", 0, 0, 0, (1, 2))
    [record] = result.records
    assert record == PartitionChangeRecord(
        h.state("t").__class__ and h.controller.image.topics["t"].topic_id, 0, 0, 1, isr=(1, 2)
    )
    reply = h.commit(result)
    assert (reply.error, reply.isr, reply.partition_epoch, reply.leader_epoch) == (
        ErrorCode.NONE,
        (1, 2),
        1,
        0,
    )
    assert h.alter_isr("t", 0, (1, 2, 3)).isr == (1, 2, 3)


def test_alter_partition_with_the_same_isr_records_nothing() -> None:
    h = three_brokers()
    result = h.controller.alter_partition(1, h.epochs[1], "t", 0, 0, 0, (1, 2, 3))
    assert result.records == () and result.response.error is ErrorCode.NONE


@pytest.mark.parametrize(
    ("broker", "override", "code"),
    [
        (1, {"broker_epoch": 999}, ErrorCode.STALE_BROKER_EPOCH),
        (7, {}, ErrorCode.STALE_BROKER_EPOCH),
        (1, {"topic": "nope"}, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        (1, {"partition": 5}, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        (1, {"leader_epoch": 1}, ErrorCode.NOT_CONTROLLER),
        (1, {"partition_epoch": 1}, ErrorCode.NOT_CONTROLLER),
        (2, {}, ErrorCode.NOT_LEADER_OR_FOLLOWER),
        (1, {"new_isr": (1, 4)}, ErrorCode.INVALID_REQUEST),
        (1, {"new_isr": (1, 1)}, ErrorCode.INVALID_REQUEST),
        (1, {"new_isr": (2, 3)}, ErrorCode.INVALID_REQUEST),
    ],
)
def test_alter_partition_refusals(
    broker: int, override: dict[str, object], code: ErrorCode
) -> None:
    h = three_brokers()
    assert alter(h, broker, **override) is code
    assert h.describe("t") == "leader=1 epoch=0 isr=[1, 2, 3] replicas=[1, 2, 3]"


def test_alter_partition_refuses_old_epochs_and_fenced_replicas() -> None:
    h = three_brokers()
    assert alter(h, 1, new_isr=(1, 2)) is ErrorCode.NONE
    assert alter(h, 1, partition_epoch=0) is ErrorCode.INVALID_UPDATE_VERSION
    h.heartbeat(3, want_fence=True)
    assert alter(h, 1, new_isr=(1, 2, 3)) is ErrorCode.INELIGIBLE_REPLICA
    h.elect("t", 0, ToBroker(2))
    assert alter(h, 1, leader_epoch=0) is ErrorCode.FENCED_LEADER_EPOCH


# -- ElectLeaders ----------------------------------------------------------------------


def test_election_codes() -> None:
    h = three_brokers()
    assert h.elect("t", 0, ElectionType.PREFERRED).error is ErrorCode.ELECTION_NOT_NEEDED
    assert h.elect("t", 0, ElectionType.UNCLEAN).error is ErrorCode.ELECTION_NOT_NEEDED
    assert h.elect("t", 3, ElectionType.PREFERRED).error is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert h.elect("x", 0, ElectionType.PREFERRED).error is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert h.elect("t", 0, ToBroker(1)).error is ErrorCode.ELECTION_NOT_NEEDED
    assert h.elect("t", 0, ToBroker(9)).error is ErrorCode.INVALID_REQUEST
    h.alter_isr("t", 0, (1, 2))
    result = h.elect("t", 0, ToBroker(3))
    assert result.error is ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE and "ISR" in result.message
    h.alter_isr("t", 0, (1,))
    h.heartbeat(1, want_fence=True)  # offline; 1 stays in the ISR as its last member
    result = h.elect("t", 0, ToBroker(1))
    assert result.error is ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE and "fenced" in result.message


def test_to_broker_moves_leadership_and_preferred_skips_a_fenced_replica() -> None:
    h = three_brokers()
    assert h.elect("t", 0, ToBroker(3)).leader == 3
    h.heartbeat(1, want_fence=True)
    result = h.elect("t", 0, ElectionType.PREFERRED)
    assert result.error is ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
    assert h.state("t").leader == 3


def test_unclean_election_with_no_live_replica() -> None:
    h = three_brokers()
    h.alter_isr("t", 0, (1,))
    for b in (1, 2, 3):
        h.heartbeat(b, want_fence=True)
    assert h.state("t").leader == -1
    assert h.elect("t", 0, ElectionType.UNCLEAN).error is ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE


def test_elect_every_partition_reports_only_attempts_and_obeys_the_limit() -> None:
    h = Harness(ControllerConfig(auto_leader_rebalance_enable=False, elections_per_call_max=2))
    h.start(1, 2, 3)
    h.create("t", assignments={p: (1, 2, 3) for p in range(4)})
    h.create("u", assignments={0: (2, 1, 3)})
    for p in range(4):
        h.elect("t", p, ToBroker(2))
    results = h.commit(h.controller.elect_leaders(None, ElectionType.PREFERRED, 0))
    assert [(r.topic, r.partition, r.error) for r in results] == [
        ("t", 0, ErrorCode.NONE),
        ("t", 1, ErrorCode.NONE),
        ("t", 2, ErrorCode.OPERATION_NOT_ATTEMPTED),
        ("t", 3, ErrorCode.OPERATION_NOT_ATTEMPTED),
        ("u", 0, ErrorCode.OPERATION_NOT_ATTEMPTED),
    ]


# -- reassignment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ((), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        ((1, 1, 2), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        ((1, 2, 9), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
    ],
)
def test_reassignment_refusals(target: tuple[int, ...], code: ErrorCode) -> None:
    h = three_brokers()
    result = h.controller.alter_partition_reassignments("t", 0, target)
    assert result.response.error is code and result.records == ()
    missing = h.controller.alter_partition_reassignments("t", 7, (1, 2, 3))
    assert missing.response.error is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_reassignment_to_the_same_replicas_is_a_no_op() -> None:
    h = three_brokers()
    result = h.controller.alter_partition_reassignments("t", 0, (1, 2, 3))
    assert result.records == () and result.response.error is ErrorCode.NONE


def test_removing_only_completes_at_once_and_moves_a_removed_leader() -> None:
    h = three_brokers()
    h.commit(h.controller.alter_partition_reassignments("t", 0, (2, 3)))
    assert h.describe("t") == "leader=2 epoch=1 isr=[2, 3] replicas=[2, 3]"


@pytest.mark.parametrize("unclean", [False, True])
def test_cancel_that_would_need_an_unclean_election(unclean: bool) -> None:
    h = Harness(
        ControllerConfig(auto_leader_rebalance_enable=False, unclean_leader_election_enable=unclean)
    )
    h.start(1, 4, 5)
    h.create("t", assignments={0: (1,)})
    h.commit(h.controller.alter_partition_reassignments("t", 0, (4, 5)))
    h.alter_isr("t", 0, (1, 4))  # 5 still catching up: not complete
    h.elect("t", 0, ToBroker(4))
    h.alter_isr("t", 0, (4,))  # now only an adding replica is in sync
    assert (
        h.describe("t") == "leader=4 epoch=1 isr=[4] replicas=[4, 5, 1] adding=[4, 5] removing=[1]"
    )

    reply = h.commit(h.controller.alter_partition_reassignments("t", 0, None))
    if not unclean:
        assert reply.error is ErrorCode.INVALID_REPLICA_ASSIGNMENT and "unclean" in reply.message
        return
    assert reply.error is ErrorCode.NONE
    assert h.describe("t") == "leader=1 epoch=2 isr=[1] replicas=[1]"


# -- topics ----------------------------------------------------------------------------


def test_topics_are_placed_only_on_usable_brokers() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2, 3)
    h.heartbeat(3, want_fence=True)
    h.register(4)  # registered, still fenced
    h.create("t", partitions=4, factor=2)
    placed = {b for s in h.controller.image.topics["t"].partitions.values() for b in s.replicas}
    assert placed == {1, 2}
    topic = NewTopic("big", 1, 3, {}, {})
    [result] = h.commit(h.controller.create_topics([topic]))
    assert result.error is ErrorCode.INVALID_REPLICATION_FACTOR


def test_create_grow_and_delete_topics() -> None:
    h = Harness(NO_REBALANCE)
    h.start(1, 2)
    h.create("t", partitions=1, factor=2)
    dup = h.controller.create_topics([NewTopic("t", 1, 1, {}, {}), NewTopic("u", 1, 1, {}, {})])
    assert [r.error for r in h.commit(dup)] == [ErrorCode.TOPIC_ALREADY_EXISTS, ErrorCode.NONE]
    assert h.commit(h.controller.create_partitions("t", 3)).error is ErrorCode.NONE
    assert sorted(h.controller.image.topics["t"].partitions) == [0, 1, 2]
    results = h.commit(h.controller.delete_topics(["t", "nope"]))
    assert [r.error for r in results] == [ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    assert sorted(h.controller.image.topics) == ["u"]


# -- the working image -----------------------------------------------------------------


def test_commands_see_their_own_uncommitted_records_until_a_reset() -> None:
    controller = QuorumController(NO_REBALANCE, random.Random(1))
    first = controller.register_broker(1, "a", LISTENERS, None, 0)
    second = controller.register_broker(2, "b", LISTENERS, None, 0)
    assert (first.offset, second.offset) == (0, 1)
    assert sorted(controller.image.brokers) == [1, 2]  # neither committed yet

    committed = MetadataImage()
    for record in first.records:
        committed.replay(record, first.offset)
    controller.reset_to(committed, 1, now_ms=0)  # leadership lost and regained: 1 is gone
    assert sorted(controller.image.brokers) == [1]
    assert controller.next_offset == 1
    retry = controller.register_broker(2, "b", LISTENERS, None, 0)
    assert retry.offset == 1 and retry.response.broker_epoch == 1


def test_reset_refuses_an_offset_behind_the_image() -> None:
    controller = QuorumController(NO_REBALANCE, random.Random(1))
    committed = MetadataImage()
    committed.replay(RegisterBrokerRecord(1, "a", 4, LISTENERS), offset=4)
    with pytest.raises(AssertionError):
        controller.reset_to(committed, 4, now_ms=0)
