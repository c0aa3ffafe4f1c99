"""One in-process broker, spoken to in Kafka's protocol: every served API, its
errors, idempotence, long polling, and what survives a restart."""

import struct

import trio

from protocol.api import ApiKey
from protocol.api_versions import SERVED
from protocol.errors import ErrorCode
from protocol.framing import encode_frame
from protocol.headers import decode_response, encode_request
from protocol.records import build_batch, iter_records
from tests.server.conftest import broker_client, running_broker


async def create_topic(conn, name, partitions=1, configs=None, validate_only=False, factor=1):
    body = {
        "topics": [
            {
                "name": name,
                "num_partitions": partitions,
                "replication_factor": factor,
                "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
            }
        ],
        "timeout_ms": 5000,
        "validate_only": validate_only,
    }
    response = await conn.request(ApiKey.CREATE_TOPICS, body)
    return response.topics[0]


async def produce(conn, topic, batch, partition=0, acks=-1, version=None):
    body = {
        "acks": acks,
        "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}],
    }
    response = await conn.request(ApiKey.PRODUCE, body, version, expect_response=acks != 0)
    return None if response is None else response.responses[0].partition_responses[0]


async def fetch(conn, topic, offset, partition=0, max_wait_ms=0, min_bytes=1, **extra):
    body = {
        "replica_id": -1,
        "max_wait_ms": max_wait_ms,
        "min_bytes": min_bytes,
        "max_bytes": 1 << 20,
        "topics": [
            {
                "topic": topic,
                "partitions": [
                    {
                        "partition": partition,
                        "fetch_offset": offset,
                        "partition_max_bytes": 1 << 20,
                        **extra,
                    }
                ],
            }
        ],
    }
    response = await conn.request(ApiKey.FETCH, body)
    return response.responses[0].partitions[0]


def batch(*values, **kw):
    return build_batch([(None, v, (), 1000 + i) for i, v in enumerate(values)], **kw)


async def raw_exchange(host, port, payload: bytes) -> bytes | None:
    """Send one frame on a fresh socket; the response frame, or None if closed."""
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(encode_frame(payload))
        data = b""
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return None
            data += chunk
            if len(data) >= 4 and len(data) >= 4 + struct.unpack_from(">i", data)[0]:
                return data[4:]


async def test_api_versions_lists_the_served_table(config):
    async with broker_client(config) as conn:
        assert conn.versions == {int(k): v for k, v in SERVED.items()}


async def test_api_versions_v3_gets_unsupported_version_and_v0_body(config):
    async with running_broker(config) as (host, port):
        request = encode_request(ApiKey.API_VERSIONS, 3, 42, "probe", {})
        payload = await raw_exchange(host, port, request)
        correlation_id, body = decode_response(ApiKey.API_VERSIONS, 0, payload)
        assert correlation_id == 42
        assert body.error_code == ErrorCode.UNSUPPORTED_VERSION
        assert {k.api_key for k in body.api_keys} == set(SERVED)


async def test_unknown_api_key_closes_only_that_connection(config):
    async with running_broker(config) as (host, port):
        assert await raw_exchange(host, port, struct.pack(">hhi", 999, 0, 1) + b"\0\0") is None
        assert await raw_exchange(host, port, b"\x00") is None  # too short for a header


async def test_produce_fetch_round_trip(config):
    async with broker_client(config) as conn:
        assert (await create_topic(conn, "t", 2)).error_code == 0
        first = await produce(conn, "t", batch(b"a", b"b"))
        second = await produce(conn, "t", batch(b"c"))
        assert (first.error_code, first.base_offset, second.base_offset) == (0, 0, 2)
        part = await fetch(conn, "t", 0)
        assert part.error_code == 0 and part.high_watermark == 3
        records = list(iter_records(part.records))
        assert [(r.offset, r.value) for r in records] == [(0, b"a"), (1, b"b"), (2, b"c")]
        part = await fetch(conn, "t", 1)
        assert [r.offset for r in iter_records(part.records)][-1] == 2


async def test_produce_errors(config):
    async with broker_client(config) as conn:
        await create_topic(conn, "t")
        assert (await produce(conn, "nope", batch(b"a"))).error_code == (
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        assert (await produce(conn, "t", batch(b"a"), version=2)).error_code == (
            ErrorCode.UNSUPPORTED_VERSION
        )
        assert (await produce(conn, "t", batch(b"a"), acks=2)).error_code == (
            ErrorCode.INVALID_REQUIRED_ACKS
        )
        corrupt = bytearray(batch(b"a"))
        corrupt[-1] ^= 0xFF
        assert (await produce(conn, "t", bytes(corrupt))).error_code == ErrorCode.CORRUPT_MESSAGE
        big = batch(b"x" * 2_000_000)
        assert (await produce(conn, "t", big)).error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert (await fetch(conn, "t", 0)).high_watermark == 0  # nothing partial appended


async def test_acks_zero_gets_no_response_but_appends(config):
    async with broker_client(config) as conn:
        await create_topic(conn, "t")
        assert await produce(conn, "t", batch(b"a"), acks=0) is None
        assert (await fetch(conn, "t", 0)).high_watermark == 1


async def test_idempotent_producer_duplicates_gaps_and_fencing(config):
    async with broker_client(config) as conn:
        await create_topic(conn, "t")
        init = await conn.request(
            ApiKey.INIT_PRODUCER_ID, {"transactional_id": None, "transaction_timeout_ms": 60000}
        )
        pid = init.producer_id
        kw = {"producer_id": pid, "producer_epoch": 0}
        assert (await produce(conn, "t", batch(b"a", b"b", base_sequence=0, **kw))).base_offset == 0
        again = await produce(conn, "t", batch(b"a", b"b", base_sequence=0, **kw))
        assert (again.error_code, again.base_offset) == (0, 0)
        gap = await produce(conn, "t", batch(b"z", base_sequence=5, **kw))
        assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert (await produce(conn, "t", batch(b"c", base_sequence=2, **kw))).base_offset == 2
        bumped = {"producer_id": pid, "producer_epoch": 1}
        assert (await produce(conn, "t", batch(b"d", base_sequence=0, **bumped))).error_code == 0
        stale = await produce(conn, "t", batch(b"e", base_sequence=3, **kw))
        assert stale.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
        assert (await fetch(conn, "t", 0)).high_watermark == 4


async def test_idempotence_and_producer_ids_survive_restart(config):
    async with broker_client(config) as conn:
        await create_topic(conn, "t")
        init = await conn.request(ApiKey.INIT_PRODUCER_ID, {"transactional_id": None})
        kw = {"producer_id": init.producer_id, "producer_epoch": 0}
        await produce(conn, "t", batch(b"a", base_sequence=0, **kw))
    async with broker_client(config) as conn:
        again = await produce(conn, "t", batch(b"a", base_sequence=0, **kw))
        assert (again.error_code, again.base_offset) == (0, 0)
        assert (await fetch(conn, "t", 0)).high_watermark == 1
        later = await conn.request(ApiKey.INIT_PRODUCER_ID, {"transactional_id": None})
        assert later.producer_id > init.producer_id


async def wait_until(predicate, timeout_s=30.0):
    """Wait for a condition with a deadline (checked on each scheduler pass)."""
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.001)  # poll: waiting on a condition, bounded by a deadline


async def test_fetch_long_poll_wakes_on_append(config):
    brokers = []
    async with broker_client(config, broker_out=brokers) as conn:
        await create_topic(conn, "t")
        result = {}

        async def waiting_fetch():
            result["part"] = await fetch(conn, "t", 0, max_wait_ms=60000)
            result["at"] = trio.current_time()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting_fetch)
            await wait_until(lambda: ("t", 0) in brokers[0].appended)  # the fetch is parked
            assert "part" not in result
            start = trio.current_time()
            await produce(conn, "t", batch(b"late"))
        assert [r.value for r in iter_records(result["part"].records)] == [b"late"]
        assert result["at"] - start < 30  # woken by the append, not by max_wait_ms


async def test_fetch_long_poll_times_out_empty(config):
    async with broker_client(config) as conn:
        await create_topic(conn, "t")
        start = trio.current_time()
        part = await fetch(conn, "t", 0, max_wait_ms=300)
        assert part.records in (b"", None)
        assert trio.current_time() - start >= 0.3


async def test_fetch_offset_out_of_range_and_leader_epoch_checks(config):
    async with broker_client(config) as conn:
        await create_topic(conn, "t")
        await produce(conn, "t", batch(b"a"))
        assert (await fetch(conn, "t", 5)).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
        assert (await fetch(conn, "t", 0, current_leader_epoch=3)).error_code == (
            ErrorCode.UNKNOWN_LEADER_EPOCH
        )
        assert (await fetch(conn, "t", 0, current_leader_epoch=0)).error_code == 0


async def test_list_offsets_earliest_latest_and_by_time(config):
    async with broker_client(config) as conn:
        await create_topic(conn, "t")
        await produce(conn, "t", build_batch([(None, b"a", (), 1000), (None, b"b", (), 2000)]))
        await produce(conn, "t", build_batch([(None, b"c", (), 3000)]))

        async def lookup(timestamp):
            body = {
                "replica_id": -1,
                "topics": [
                    {"name": "t", "partitions": [{"partition_index": 0, "timestamp": timestamp}]}
                ],
            }
            part = (await conn.request(ApiKey.LIST_OFFSETS, body)).topics[0].partitions[0]
            return part.error_code, part.offset

        assert await lookup(-2) == (0, 0)
        assert await lookup(-1) == (0, 3)
        assert await lookup(1500) == (0, 1)
        assert await lookup(3000) == (0, 2)
        assert await lookup(9999) == (0, -1)


async def test_create_topics_errors_and_validate_only(config):
    async with broker_client(config) as conn:
        assert (await create_topic(conn, "bad/name")).error_code == (
            ErrorCode.INVALID_TOPIC_EXCEPTION
        )
        assert (await create_topic(conn, "t", 0)).error_code == ErrorCode.INVALID_PARTITIONS
        refused = await create_topic(conn, "t", configs={"retention.ms": "x"})
        assert refused.error_code == ErrorCode.INVALID_CONFIG and refused.error_message
        assert (await create_topic(conn, "t", validate_only=True)).error_code == 0
        assert (await create_topic(conn, "t")).error_code == 0
        assert (await create_topic(conn, "t")).error_code == ErrorCode.TOPIC_ALREADY_EXISTS
        body = {"topics": [{"name": "r", "num_partitions": 1, "replication_factor": 3}]}
        response = await conn.request(ApiKey.CREATE_TOPICS, body)
        assert response.topics[0].error_code == ErrorCode.INVALID_REPLICATION_FACTOR


async def test_metadata_auto_create_and_topics_persist(config):
    async with broker_client(config) as conn:
        body = {"topics": [{"name": "auto"}], "allow_auto_topic_creation": True}
        response = await conn.request(ApiKey.METADATA, body)
        assert response.topics[0].error_code == 0
        assert response.topics[0].partitions[0].leader_id == 1
        body = {"topics": [{"name": "manual"}], "allow_auto_topic_creation": False}
        response = await conn.request(ApiKey.METADATA, body)
        assert response.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        await create_topic(conn, "kept", 3, {"retention.ms": "60000"})
    async with broker_client(config) as conn:
        response = await conn.request(ApiKey.METADATA, {"topics": None})
        topics = {t.name: len(t.partitions) for t in response.topics}
        assert topics == {"auto": 1, "kept": 3}
        body = {
            "resources": [{"resource_type": 2, "resource_name": "kept", "configuration_keys": None}]
        }
        configs = (await conn.request(ApiKey.DESCRIBE_CONFIGS, body)).results[0].configs
        values = {c.name: c.value for c in configs}
        assert values["retention.ms"] == "60000" and values["segment.bytes"] == "1073741824"


async def test_delete_topics_and_create_partitions(config):
    async with broker_client(config) as conn:
        await create_topic(conn, "t", 1)
        body = {"topics": [{"name": "t", "count": 3, "assignments": None}], "timeout_ms": 1000}
        response = await conn.request(ApiKey.CREATE_PARTITIONS, body)
        assert response.results[0].error_code == 0
        body = {"topics": [{"name": "t", "count": 2, "assignments": None}], "timeout_ms": 1000}
        response = await conn.request(ApiKey.CREATE_PARTITIONS, body)
        assert response.results[0].error_code == ErrorCode.INVALID_PARTITIONS
        response = await conn.request(ApiKey.DELETE_TOPICS, {"topic_names": ["t", "nope"]})
        assert [r.error_code for r in response.responses] == [
            0,
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ]
        metadata = await conn.request(ApiKey.METADATA, {"topics": None})
        assert metadata.topics == []


async def test_connection_limits_refuse_extra_connections(tmp_path):
    from dataclasses import replace

    from tests.server.conftest import make_config

    base = make_config(tmp_path)
    config = replace(base, network=replace(base.network, connections_per_ip_max=2))
    request = encode_request(ApiKey.API_VERSIONS, 0, 7, "t", {})
    async with running_broker(config) as (host, port):
        first = await trio.open_tcp_stream(host, port)
        second = await trio.open_tcp_stream(host, port)
        async with first, second:
            await first.send_all(encode_frame(request))
            assert await first.receive_some(4)  # the first two are served
            assert await raw_exchange(host, port, request) is None  # the third is closed
        with trio.fail_after(30):
            while (payload := await raw_exchange(host, port, request)) is None:
                await trio.sleep(0.01)  # poll: the broker notices the closes asynchronously
        assert decode_response(ApiKey.API_VERSIONS, 0, payload)[0] == 7


async def test_retention_bytes_deletes_old_segments(config):
    brokers = []
    async with broker_client(config, broker_out=brokers) as conn:
        configs = {"segment.bytes": "1024", "retention.bytes": "2048"}
        await create_topic(conn, "t", configs=configs)
        for _ in range(20):  # recent timestamps: only retention.bytes applies
            await produce(conn, "t", build_batch([(None, b"x" * 400, (), broker_now())]))
        broker = brokers[0]
        broker.replicas.maintain(broker_now(), retention=True)
        body = {
            "replica_id": -1,
            "topics": [{"name": "t", "partitions": [{"partition_index": 0, "timestamp": -2}]}],
        }
        earliest = (await conn.request(ApiKey.LIST_OFFSETS, body)).topics[0].partitions[0]
        assert 0 < earliest.offset < 20
        assert (await fetch(conn, "t", 0)).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
        part = await fetch(conn, "t", earliest.offset)
        assert next(iter_records(part.records)).offset == earliest.offset


def broker_now():
    from broker.server.clock import now_ms

    return now_ms()
