"""Real Kafka clients in consumer groups against an in-process trilog broker."""

from __future__ import annotations

import pytest
import trio

from tests.groups_real import clients
from tests.groups_real.conftest import serving

pytestmark = pytest.mark.clients

RESUME_SCENARIOS = {
    "kafka-python": clients.kafka_python_consume_and_commit,
    "confluent": clients.confluent_consume_and_commit,
    "aiokafka": clients.aiokafka_consume_and_commit,
}


@pytest.mark.parametrize("client", sorted(RESUME_SCENARIOS))
async def test_consumer_resumes_from_committed_offsets(tmp_path, client: str) -> None:
    consume = RESUME_SCENARIOS[client]
    async with serving(tmp_path) as bootstrap:
        await trio.to_thread.run_sync(clients.create_topic, bootstrap, "orders", 2)
        first = await trio.to_thread.run_sync(clients.produce, bootstrap, "orders", 2, 20, "a")
        got = await trio.to_thread.run_sync(consume, bootstrap, "billing", "orders", 20)
        assert {value for _, _, value in got} == first
        second = await trio.to_thread.run_sync(clients.produce, bootstrap, "orders", 2, 10, "b")
        # A new consumer in the same group starts where the first one committed.
        got = await trio.to_thread.run_sync(consume, bootstrap, "billing", "orders", 10)
        assert {value for _, _, value in got} == second
        assert sorted(offset for _, offset, _ in got) == sorted([10, 11, 12, 13, 14] * 2)


async def test_kafka_python_and_confluent_share_one_group(tmp_path) -> None:
    """Each of 6 partitions is consumed by exactly one member; every message once."""
    shared = clients.Shared()
    async with serving(tmp_path) as bootstrap, trio.open_nursery() as nursery:
        await trio.to_thread.run_sync(clients.create_topic, bootstrap, "events", 6)
        for name in ("kafka-python", "confluent"):
            nursery.start_soon(
                trio.to_thread.run_sync,
                clients.run_member,
                name,
                shared,
                bootstrap,
                "mixed",
                "events",
            )
        try:
            with trio.fail_after(clients.DEADLINE_S):
                while not _split_between_both(shared):
                    await trio.sleep(0.1)  # poll: waiting on a condition, bounded by a deadline
            sent = await trio.to_thread.run_sync(clients.produce, bootstrap, "events", 6, 60, "e")
            with trio.fail_after(clients.DEADLINE_S):
                while shared.total() < len(sent):
                    await trio.sleep(0.1)  # poll: waiting on a condition, bounded by a deadline
        finally:
            shared.stop.set()
    by_member = {name: {p for p, _, _ in records} for name, records in shared.consumed.items()}
    assert by_member["kafka-python"] and by_member["confluent"]
    assert not by_member["kafka-python"] & by_member["confluent"]
    assert by_member["kafka-python"] | by_member["confluent"] == set(range(6))
    values = [value for records in shared.consumed.values() for _, _, value in records]
    assert sorted(values) == sorted(sent)


def _split_between_both(shared: clients.Shared) -> bool:
    with shared.lock:
        a = shared.assignments.get("kafka-python", frozenset())
        b = shared.assignments.get("confluent", frozenset())
    return bool(a) and bool(b) and not a & b and a | b == set(range(6))
