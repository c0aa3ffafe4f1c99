"""Shared pieces of the operator-API tests: topics with fixed assignments, and the
three requests the tests send most."""

from __future__ import annotations

from typing import Any

from broker.server.api_ops import ELECTION_TYPE_TO_BROKER, target_broker_tag
from protocol.api import ApiKey


async def create_assigned(conn, name: str, *assignments: list[int]) -> None:
    """A topic whose partition i lives on assignments[i] (first one preferred)."""
    body = {
        "topics": [
            {
                "name": name,
                "num_partitions": -1,
                "replication_factor": -1,
                "assignments": [
                    {"partition_index": i, "broker_ids": brokers}
                    for i, brokers in enumerate(assignments)
                ],
                "configs": [],
            }
        ],
        "timeout_ms": 5000,
    }
    response = await conn.request(ApiKey.CREATE_TOPICS, body)
    assert response.topics[0].error_code == 0, response


async def elect(
    conn, election_type: int, partitions: dict[str, list[int]] | None, target: int | None = None
) -> Any:
    body: dict[str, Any] = {
        "election_type": election_type,
        "topic_partitions": None
        if partitions is None
        else [{"topic": t, "partitions": ps} for t, ps in partitions.items()],
        "timeout_ms": 10000,
    }
    if target is not None:
        assert election_type == ELECTION_TYPE_TO_BROKER
        body["_unknown_tagged_fields"] = target_broker_tag(target)
    return await conn.request(ApiKey.ELECT_LEADERS, body)


def election_codes(response) -> dict[tuple[str, int], int]:
    return {
        (topic.topic, row.partition_id): row.error_code
        for topic in response.replica_election_results
        for row in topic.partition_result
    }


async def reassign(conn, topic: str, partition: int, replicas: list[int] | None) -> Any:
    body = {
        "timeout_ms": 10000,
        "topics": [
            {"name": topic, "partitions": [{"partition_index": partition, "replicas": replicas}]}
        ],
    }
    response = await conn.request(ApiKey.ALTER_PARTITION_REASSIGNMENTS, body)
    return response.responses[0].partitions[0]


async def list_reassignments(conn, topics: dict[str, list[int]] | None = None) -> dict:
    body = {
        "timeout_ms": 10000,
        "topics": None
        if topics is None
        else [{"name": t, "partition_indexes": ps} for t, ps in topics.items()],
    }
    response = await conn.request(ApiKey.LIST_PARTITION_REASSIGNMENTS, body)
    assert response.error_code == 0
    return {
        (t.name, p.partition_index): (
            list(p.replicas),
            list(p.adding_replicas),
            list(p.removing_replicas),
        )
        for t in response.topics
        for p in t.partitions
    }
