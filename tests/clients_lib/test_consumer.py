"""trilog's consumer against an in-process broker: seek, offsets_for_times,
auto_offset_reset, and its errors."""

import pytest
import trio

from consumer import (
    Consumer,
    NoOffsetForPartitionError,
    OffsetAndTimestamp,
    OffsetOutOfRangeError,
)
from producer import KafkaClientError, Producer
from tests.clients_lib.conftest import cluster

TP = ("t", 0)


async def fill(bootstrap, count=10):
    """count records on t-0, value i at offset i, timestamp 1000 * (i + 1)."""
    async with Producer(bootstrap) as producer:
        for i in range(count):
            await producer.send("t", b"%d" % i, partition=0, timestamp_ms=1000 * (i + 1))


async def take(consumer, count):
    with trio.fail_after(5):
        return [(await consumer.getone()).offset for _ in range(count)]


async def test_seek_position_and_skipping_inside_a_batch(config):
    async with cluster(config, {"t": 1}) as bootstrap:
        await fill(bootstrap)
        async with Consumer(bootstrap) as consumer:
            consumer.assign([TP])
            assert consumer.position(TP) is None
            consumer.seek(TP, 7)  # mid-batch: offsets 0-6 of the batch are skipped
            assert await take(consumer, 3) == [7, 8, 9]
            assert consumer.position(TP) == 10
            consumer.seek(TP, 2)
            record = await consumer.getone()
            assert (record.offset, record.value, record.timestamp) == (2, b"2", 3000)
            await consumer.seek_to_beginning()
            assert consumer.position(TP) == 0
            await consumer.seek_to_end()
            assert consumer.position(TP) == 10
            with pytest.raises(ValueError, match="not assigned"):
                consumer.seek(("t", 1), 0)


async def test_offsets_for_times(config):
    async with cluster(config, {"t": 1}) as bootstrap:
        await fill(bootstrap)
        async with Consumer(bootstrap) as consumer:
            consumer.assign([TP])
            found = await consumer.offsets_for_times({TP: 4500})
            assert found == {TP: OffsetAndTimestamp(4, 5000)}
            assert await consumer.offsets_for_times({TP: 10**12}) == {TP: None}


async def test_latest_reset_waits_for_new_records(config):
    async with cluster(config, {"t": 1}) as bootstrap:
        await fill(bootstrap, 3)
        async with Consumer(bootstrap, auto_offset_reset="latest") as consumer:
            consumer.assign([TP])
            got = []

            async def read_one():
                got.append(await consumer.getone())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_one)
                with trio.fail_after(5):
                    while consumer.position(TP) is None:  # reset to the end, then long-poll
                        await trio.sleep(0.01)  # poll (deadline above)
                assert consumer.position(TP) == 3
                await fill(bootstrap, 1)
            assert [(r.offset, r.value) for r in got] == [(3, b"0")]


async def test_earliest_reset_on_out_of_range(config):
    async with cluster(config, {"t": 1}) as bootstrap:
        await fill(bootstrap, 3)
        async with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
            consumer.assign([TP])
            consumer.seek(TP, 50)
            assert await take(consumer, 3) == [0, 1, 2]


async def test_reset_none_raises(config):
    async with cluster(config, {"t": 1}) as bootstrap:
        await fill(bootstrap, 3)
        async with Consumer(bootstrap, auto_offset_reset="none") as consumer:
            consumer.assign([TP])
            with pytest.raises(NoOffsetForPartitionError):
                await consumer.getone()
            consumer.seek(TP, 50)
            with pytest.raises(OffsetOutOfRangeError):
                await consumer.getone()


async def test_unknown_topic_partition_and_group_id(config):
    async with cluster(config, {"t": 1}) as bootstrap, Consumer(bootstrap) as consumer:
        with pytest.raises(KafkaClientError, match="UNKNOWN_TOPIC_OR_PARTITION"):
            await consumer.partitions_for("nope")
        consumer.assign([("t", 3)])
        with pytest.raises(KafkaClientError, match="no partition 3"):
            await consumer.getone()
    with pytest.raises(ValueError, match="topics"):
        Consumer("127.0.0.1:9092", group_id="g")  # a group member must subscribe
    with pytest.raises(KafkaClientError, match="no broker reachable"):
        async with Consumer("127.0.0.1:1"):
            pass
