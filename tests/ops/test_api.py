"""The operator APIs against an in-process three-broker cluster: ElectLeaders
(preferred, unclean, trilog's to-broker), reassignments, DescribeQuorum and
DescribeCluster."""

from __future__ import annotations

import trio

from broker.server.api_ops import ELECTION_TYPE_TO_BROKER, METADATA_TOPIC
from producer.client import connect
from protocol.api import ApiKey
from protocol.errors import ErrorCode
from protocol.records import build_batch
from tests.ops.cluster_helpers import (
    create_assigned,
    elect,
    election_codes,
    list_reassignments,
    reassign,
)
from tests.server.test_broker_apis import produce
from tests.server.test_cluster import partition_state, running_cluster, wait_for

PREFERRED, UNCLEAN = 0, 1
XFAIL_WAIT_S = 8


def _leader_of(node, topic: str, index: int) -> int | None:
    image = node.broker.plane.image.topic(topic)
    return None if image is None else image.partitions[index].leader


def _leader_everywhere(nodes, topic: str, index: int, leader: int):
    return lambda: all(_leader_of(n, topic, index) == leader for n in nodes)


async def test_preferred_to_broker_and_unclean_elections(tmp_path):
    async with running_cluster(tmp_path) as nodes, connect(*nodes[0].address) as conn:
        await create_assigned(conn, "e", [1, 2, 3], [2, 3, 1])
        await wait_for(_leader_everywhere(nodes, "e", 0, 1), "initial leader")
        got = await elect(conn, PREFERRED, {"e": [0]})
        assert election_codes(got) == {("e", 0): ErrorCode.ELECTION_NOT_NEEDED}

        got = await elect(conn, ELECTION_TYPE_TO_BROKER, {"e": [0]}, target=3)
        assert election_codes(got) == {("e", 0): ErrorCode.NONE}
        await wait_for(_leader_everywhere(nodes, "e", 0, 3), "leader moved to 3")
        again = await elect(conn, ELECTION_TYPE_TO_BROKER, {"e": [0]}, target=3)
        assert election_codes(again) == {("e", 0): ErrorCode.ELECTION_NOT_NEEDED}

        unclean = await elect(conn, UNCLEAN, {"e": [0]})
        assert election_codes(unclean) == {("e", 0): ErrorCode.ELECTION_NOT_NEEDED}

        every = await elect(conn, PREFERRED, None)  # only attempted ones are reported
        assert election_codes(every) == {("e", 0): ErrorCode.NONE}
        await wait_for(_leader_everywhere(nodes, "e", 0, 1), "preferred leader back")
        assert partition_state(nodes[0], "e", 0).leader_epoch >= 2


async def test_bad_elections_are_answered_not_crashed(tmp_path):
    async with running_cluster(tmp_path) as nodes, connect(*nodes[1].address) as conn:
        await create_assigned(conn, "b", [1, 2])
        unknown_type = await elect(conn, 7, {"b": [0]})
        assert unknown_type.error_code == ErrorCode.INVALID_REQUEST
        assert election_codes(unknown_type) == {("b", 0): ErrorCode.INVALID_REQUEST}
        no_target = await elect(conn, ELECTION_TYPE_TO_BROKER, {"b": [0]})
        assert election_codes(no_target) == {("b", 0): ErrorCode.INVALID_REQUEST}
        not_replica = await elect(conn, ELECTION_TYPE_TO_BROKER, {"b": [0]}, target=3)
        assert election_codes(not_replica) == {("b", 0): ErrorCode.INVALID_REQUEST}
        missing = await elect(conn, PREFERRED, {"nope": [0], "b": [5]})
        assert set(election_codes(missing).values()) == {ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
        v0 = await conn.request(
            ApiKey.ELECT_LEADERS, {"topic_partitions": [{"topic": "b", "partitions": [0]}]}, 0
        )
        assert v0.replica_election_results[0].partition_result[0].error_code == (
            ErrorCode.ELECTION_NOT_NEEDED
        )


async def _start_reassignment(nodes, conn) -> None:
    await create_assigned(conn, "r", [1, 2])
    await wait_for(_leader_everywhere(nodes, "r", 0, 1), "leader 1")
    for i in range(20):
        batch = build_batch([(None, b"v%d" % i, (), 1)])
        assert (await produce(conn, "r", batch, acks=-1)).error_code == 0
    assert (await reassign(conn, "r", 0, [])).error_code == ErrorCode.INVALID_REPLICA_ASSIGNMENT
    assert (await reassign(conn, "r", 0, [2, 3])).error_code == ErrorCode.NONE
    assert await list_reassignments(conn) == {("r", 0): ([2, 3, 1], [3], [1])}


def _reassigned(node) -> bool:
    state = partition_state(node, "r")
    return state.replicas == (2, 3) and not state.reassigning


async def test_reassignment_completes_when_the_new_replica_joins_the_isr(tmp_path):
    async with running_cluster(tmp_path) as nodes, connect(*nodes[0].address) as conn:
        await _start_reassignment(nodes, conn)
        # Work around the broker bug in the xfail test below: a new leader epoch
        # makes the leader track the added replica.
        got = await elect(conn, ELECTION_TYPE_TO_BROKER, {"r": [0]}, target=2)
        assert election_codes(got) == {("r", 0): ErrorCode.NONE}
        await wait_for(lambda: _reassigned(nodes[0]), "reassignment finished")
        assert await list_reassignments(conn) == {}
        assert partition_state(nodes[0], "r").leader == 2
        replica = nodes[2].broker.replicas.get("r", 0)
        await wait_for(lambda: replica.log.log_end_offset == 20, "new replica has the data")


async def test_reassignment_completes_without_a_leader_change(tmp_path):
    async with running_cluster(tmp_path) as nodes, connect(*nodes[0].address) as conn:
        await _start_reassignment(nodes, conn)
        with trio.fail_after(XFAIL_WAIT_S):
            while not _reassigned(nodes[0]):
                await trio.sleep(0.05)  # poll: waiting on a condition, bounded by a deadline


async def test_cancel_and_list_a_stuck_reassignment(tmp_path):
    async with running_cluster(tmp_path) as nodes:
        async with connect(*nodes[1].address) as conn:
            await create_assigned(conn, "c", [2, 3])
        nodes[0].kill()  # broker 1 stays registered, so it may be named, but never catches up
        async with connect(*nodes[1].address) as conn:
            assert (await reassign(conn, "c", 0, [1, 2])).error_code == ErrorCode.NONE
            listed = await list_reassignments(conn)
            assert listed == {("c", 0): ([1, 2, 3], [1], [3])}
            assert await list_reassignments(conn, {"c": [1], "other": [0]}) == {}
            assert (await reassign(conn, "c", 0, None)).error_code == ErrorCode.NONE
            assert await list_reassignments(conn) == {}
            assert partition_state(nodes[1], "c").replicas == (2, 3)
            again = await reassign(conn, "c", 0, None)
            assert again.error_code == ErrorCode.NO_REASSIGNMENT_IN_PROGRESS


async def test_describe_quorum_and_cluster(tmp_path):
    async with running_cluster(tmp_path) as nodes:
        await wait_for(lambda: nodes[0].broker.quorum.leader_id is not None, "a quorum leader")
        leader_id = nodes[0].broker.quorum.leader_id
        leader = nodes[leader_id - 1]
        other = next(n for n in nodes if n is not leader)
        body = {"topics": [{"topic_name": METADATA_TOPIC, "partitions": [{"partition_index": 0}]}]}
        async with connect(*leader.address) as conn:
            quorum = await conn.request(ApiKey.DESCRIBE_QUORUM, body)
            part = quorum.topics[0].partitions[0]
            assert (part.error_code, part.leader_id) == (0, leader_id)
            assert part.leader_epoch == leader.broker.raft.term and part.high_watermark > 0
            voters = {v.replica_id: v.log_end_offset for v in part.current_voters}
            assert sorted(voters) == [1, 2, 3] and voters[leader_id] >= part.high_watermark
            assert [n.node_id for n in quorum.nodes] == [1, 2, 3]
            wrong = {"topics": [{"topic_name": "t", "partitions": [{"partition_index": 0}]}]}
            bad = await conn.request(ApiKey.DESCRIBE_QUORUM, wrong)
            assert bad.topics[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        async with connect(*other.address) as conn:
            part = (await conn.request(ApiKey.DESCRIBE_QUORUM, body)).topics[0].partitions[0]
            assert (part.error_code, part.leader_id) == (
                ErrorCode.NOT_LEADER_OR_FOLLOWER,
                leader_id,
            )
            cluster = await conn.request(ApiKey.DESCRIBE_CLUSTER, {"include_fenced_brokers": True})
            assert cluster.error_code == 0 and cluster.controller_id == leader_id
            assert cluster.cluster_id == other.broker.cluster_id
            assert [(b.broker_id, b.is_fenced) for b in cluster.brokers] == [
                (1, False),
                (2, False),
                (3, False),
            ]
            v0 = await conn.request(ApiKey.DESCRIBE_CLUSTER, {}, 0)
            assert [b.port for b in v0.brokers] == [n.address[1] for n in nodes]
            controllers = await conn.request(ApiKey.DESCRIBE_CLUSTER, {"endpoint_type": 2})
            assert controllers.error_code == ErrorCode.MISMATCHED_ENDPOINT_TYPE
