"""trilog's producer against an in-process broker: partitioning, codecs, ordering,
idempotent retries and the buffer bound."""

import random

import pytest
import trio

import producer.producer as producer_module
from consumer import Consumer
from producer import KafkaClientError, Producer, murmur2, partition_for_key
from producer.client import KafkaClientError as ClientError
from tests.clients_lib.conftest import cluster, import_kafka_python

import_kafka_python()
from kafka.partitioner.default import murmur2 as kafka_python_murmur2  # noqa: E402

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def test_murmur2_matches_kafka_python_for_random_keys():
    rng = random.Random(20240611)
    keys = [rng.randbytes(rng.randrange(0, 40)) for _ in range(2000)] + [b"", b"a", b"abc"]
    for key in keys:
        ours = murmur2(key)
        assert -(1 << 31) <= ours < (1 << 31)  # signed, as Java's int
        assert ours & 0xFFFFFFFF == kafka_python_murmur2(key), key


def test_partition_for_key_is_java_to_positive_modulo():
    for key in (b"", b"user-1", b"\xff" * 7):
        expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % 7
        assert partition_for_key(key, 7) == expected
    with pytest.raises(ValueError):
        partition_for_key(b"k", 0)


async def read_all(bootstrap, topic, partitions, expected):
    """`expected` records from the start of the given partitions, in fetch order."""
    async with Consumer(bootstrap, auto_offset_reset="earliest") as consumer:
        consumer.assign([(topic, p) for p in range(partitions)])
        records = []
        with trio.fail_after(10):
            async for record in consumer:
                records.append(record)
                if len(records) == expected:
                    return records
    return records


@pytest.mark.parametrize("codec", CODECS)
async def test_round_trip_with_every_codec_keys_on_murmur2_partitions(config, codec):
    async with cluster(config, {"t": 3}) as bootstrap:
        async with Producer(bootstrap, compression=codec, linger_ms=20) as producer:
            handles = [
                await producer.enqueue(
                    "t", b"value-%d" % i, key=b"key-%d" % (i % 17), headers=[("h", b"%d" % i)]
                )
                for i in range(300)
            ]
            metas = [await h.result() for h in handles]
        records = await read_all(bootstrap, "t", 3, 300)
    assert sorted(r.value for r in records) == sorted(b"value-%d" % i for i in range(300))
    for record in records:
        assert record.partition == partition_for_key(record.key, 3)
        assert record.headers == (("h", record.value.split(b"-")[1]),)
    by_value = {(r.partition, r.offset): r.value for r in records}
    for i, meta in enumerate(metas):
        assert by_value[(meta.partition, meta.offset)] == b"value-%d" % i


async def test_order_within_a_partition_is_send_order(config):
    async with cluster(config, {"t": 2}) as bootstrap:
        async with Producer(bootstrap, batch_bytes=512, linger_ms=1) as producer:
            handles = [await producer.enqueue("t", b"%06d" % i, key=b"same") for i in range(2000)]
        offsets = [(await h.result()).offset for h in handles]
        assert offsets == list(range(2000))
        records = await read_all(bootstrap, "t", 2, 2000)
    assert [r.value for r in records] == [b"%06d" % i for i in range(2000)]


async def test_keyless_records_stick_to_a_partition_per_batch(config):
    async with (
        cluster(config, {"t": 4}) as bootstrap,
        Producer(bootstrap, linger_ms=1000, batch_bytes=1 << 20) as producer,
    ):
        handles = [await producer.enqueue("t", b"x") for _ in range(50)]
        await producer.flush()
        first = {(await h.result()).partition for h in handles}
        later = await producer.send("t", b"y")
    assert len(first) == 1
    assert later.partition not in first  # the closed batch moved the sticky partition


def lose_first_responses(monkeypatch, count):
    """Make the first `count` Produce responses vanish after the broker appended."""
    real = producer_module.pooled_request
    lost = {"n": 0}

    async def flaky(pool, address, api_key, body, **kw):
        response = await real(pool, address, api_key, body, **kw)
        if api_key == 0 and lost["n"] < count:
            lost["n"] += 1
            raise ClientError("response lost (test)")
        return response

    monkeypatch.setattr(producer_module, "pooled_request", flaky)


@pytest.mark.parametrize("idempotent", [True, False])
async def test_retries_after_lost_responses(config, monkeypatch, idempotent):
    lose_first_responses(monkeypatch, 2)
    async with cluster(config, {"t": 1}) as bootstrap:
        async with Producer(
            bootstrap, enable_idempotence=idempotent, retry_backoff_ms=10
        ) as producer:
            meta = await producer.send("t", b"once")
        records = await read_all(bootstrap, "t", 1, 3 if not idempotent else 1)
    values = [r.value for r in records]
    if idempotent:
        assert values == [b"once"] and meta.offset == 0
    else:
        assert values == [b"once"] * 3  # what idempotence prevents


async def test_send_waits_while_the_buffer_is_full(config):
    small = {"buffer_bytes_max": 2000, "linger_ms": 60000, "batch_bytes": 1 << 20}
    async with cluster(config, {"t": 1}) as bootstrap, Producer(bootstrap, **small) as producer:
        for _ in range(16):  # 16 records of 121 bytes fit in 2000, a 17th does not
            await producer.enqueue("t", b"v" * 100)
        with trio.move_on_after(0.3) as blocked:
            await producer.enqueue("t", b"v" * 100)
        assert blocked.cancelled_caught
        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer.flush)
            with trio.fail_after(5):
                handle = await producer.enqueue("t", b"after")
        assert (await handle.result()).offset == 16


async def test_errors_bad_partition_and_oversized_record(config):
    async with cluster(config, {"t": 2}) as bootstrap, Producer(bootstrap) as producer:
        with pytest.raises(KafkaClientError, match="no partition 5"):
            await producer.send("t", b"x", partition=5)
        with pytest.raises(KafkaClientError, match="exceeds"):
            await producer.send("t", b"x" * (2 << 20))
        assert (await producer.send("t", b"ok", partition=1)).partition == 1


async def test_unreachable_bootstrap_and_bad_options():
    with pytest.raises(KafkaClientError, match="no broker reachable"):
        async with Producer("127.0.0.1:1"):
            pass
    with pytest.raises(ValueError, match="acks"):
        Producer("127.0.0.1:1", acks=1, enable_idempotence=True)
    with pytest.raises(ValueError, match="compression"):
        Producer("127.0.0.1:1", compression="brotli")


async def test_acks_zero_and_one(config):
    async with cluster(config, {"t": 1}) as bootstrap:
        async with Producer(bootstrap, acks=0) as producer:
            assert (await producer.send("t", b"a")).offset == -1
        async with Producer(bootstrap, acks=1) as producer:
            assert (await producer.send("t", b"b")).offset == 1
