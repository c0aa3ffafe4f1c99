"""An in-process broker with a fast group coordinator, and helpers for group tests.

The coordinator's initial rebalance delay is 200 ms (Kafka's 3 s would only
slow every test) and ``__consumer_offsets`` has 4 partitions. Every wait in
these tests is bounded by a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from broker.coordinator import GroupConfig
from broker.server.api_groups import GroupService
from broker.server.broker import Broker, serve_broker
from producer import Producer
from producer.client import connect
from protocol.api import ApiKey
from tests.clients_lib.conftest import client_config

DEADLINE_S = 30
GROUP_CONFIG = GroupConfig(initial_rebalance_delay_ms=200, offsets_topic_num_partitions=4)
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 200}
"""Consumer settings that make rebalances quick: the broker's minimum session."""


@asynccontextmanager
async def group_broker(tmp_path, topics: dict[str, int]) -> AsyncIterator[str]:
    """A broker serving until the block exits, with {topic: partitions}; yields bootstrap."""
    broker = Broker(client_config(tmp_path))
    broker.groups = GroupService(broker, GROUP_CONFIG)
    async with trio.open_nursery() as nursery:
        (host, port), *_ = await nursery.start(serve_broker, broker)
        await create_topics(host, port, topics)
        try:
            yield f"{host}:{port}"
        finally:
            nursery.cancel_scope.cancel()


async def create_topics(host: str, port: int, topics: dict[str, int], factor: int = 1) -> None:
    async with connect(host, port) as conn:
        body = {
            "topics": [
                {"name": name, "num_partitions": count, "replication_factor": factor}
                for name, count in topics.items()
            ],
            "timeout_ms": 10000,
        }
        response = await conn.request(ApiKey.CREATE_TOPICS, body)
        assert all(t.error_code == 0 for t in response.topics), response


async def produce_values(bootstrap: str, topic: str, values: list[bytes], partitions: int) -> None:
    """Each value to partition i % partitions, acks=all, all delivered."""
    async with Producer(bootstrap) as producer:
        handles = [
            await producer.enqueue(topic, value, partition=i % partitions)
            for i, value in enumerate(values)
        ]
        await producer.flush()
        for handle in handles:
            await handle.result()


async def wait_until(predicate, what: str, timeout_s: float = DEADLINE_S) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.02)  # poll: waiting on a condition, bounded by a deadline
