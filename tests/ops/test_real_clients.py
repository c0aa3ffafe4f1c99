"""Kafka's own admin clients against the operator APIs: kafka-python's
elect_leaders / alter_partition_reassignments / list_partition_reassignments
and confluent-kafka's elect_leaders."""

from __future__ import annotations

import pytest
import trio

from broker.server.api_ops import ELECTION_TYPE_TO_BROKER
from producer.client import connect
from tests.ops.cluster_helpers import create_assigned, elect, election_codes
from tests.realclients.clients import _import_kafka_python
from tests.server.test_cluster import running_cluster, wait_for

pytestmark = pytest.mark.clients
CLIENT_TIMEOUT_S = 30


def _leader(nodes, topic: str) -> int | None:
    image = nodes[0].broker.plane.image.topic(topic)
    return None if image is None else image.partitions[0].leader


async def _move_leader_to_2(nodes, topic: str) -> None:
    async with connect(*nodes[0].address) as conn:
        await create_assigned(conn, topic, [1, 2])
        await wait_for(lambda: _leader(nodes, topic) == 1, "leader 1")
        got = await elect(conn, ELECTION_TYPE_TO_BROKER, {topic: [0]}, target=2)
        assert election_codes(got) == {(topic, 0): 0}
    await wait_for(lambda: _leader(nodes, topic) == 2, "leader 2")


def _kafka_python_admin(address: tuple[str, int]) -> dict:
    kafka = _import_kafka_python()
    TopicPartition = kafka.TopicPartition  # noqa: N806
    KafkaAdminClient = kafka.admin.KafkaAdminClient  # noqa: N806
    admin = KafkaAdminClient(bootstrap_servers=f"{address[0]}:{address[1]}")
    try:
        admin.elect_leaders(0, {"kp": [0]})  # raises on any error
        tp = TopicPartition("kp", 0)
        altered = admin.alter_partition_reassignments({tp: [1, 3]})
        listed = admin.list_partition_reassignments()
        cancelled = admin.alter_partition_reassignments({tp: None})
        return {"altered": altered, "listed": listed, "cancelled": cancelled, "tp": tp}
    finally:
        admin.close()


async def test_kafka_python_admin(tmp_path):
    async with running_cluster(tmp_path) as nodes:
        await _move_leader_to_2(nodes, "kp")
        nodes[2].kill()  # broker 3 stays registered but never catches up: the move stays listed
        survivor = nodes[0].broker
        await wait_for(
            lambda: survivor.plane.image.brokers[3].fenced and survivor.quorum.leader_id in (1, 2),
            "broker 3 fenced, controller elsewhere",
        )
        out = await trio.to_thread.run_sync(_kafka_python_admin, nodes[1].address)
        await wait_for(lambda: _leader(nodes, "kp") == 1, "preferred leader back")
        tp = out["tp"]
        assert out["altered"] == {tp: None}
        assert out["listed"][tp] == {
            "replicas": [1, 3, 2],
            "adding_replicas": [3],
            "removing_replicas": [2],
        }
        assert out["cancelled"] == {tp: None}
        await wait_for(
            lambda: not nodes[0].broker.plane.image.topic("kp").partitions[0].reassigning,
            "cancelled",
        )


def _confluent_elect(address: tuple[str, int]) -> dict:
    from confluent_kafka import ElectionType, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": f"{address[0]}:{address[1]}"})
    future = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition("ck", 0)])
    return future.result(timeout=CLIENT_TIMEOUT_S)


async def test_confluent_kafka_elect_leaders(tmp_path):
    async with running_cluster(tmp_path) as nodes:
        await _move_leader_to_2(nodes, "ck")
        result = await trio.to_thread.run_sync(_confluent_elect, nodes[2].address)
        assert [(tp.topic, tp.partition, err) for tp, err in result.items()] == [("ck", 0, None)]
        await wait_for(lambda: _leader(nodes, "ck") == 1, "preferred leader back")
