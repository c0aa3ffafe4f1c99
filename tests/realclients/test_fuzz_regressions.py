"""Requests the fuzz found mishandled, each pinned down on its own."""

from __future__ import annotations

import socket
import struct

import pytest
import trio

from producer.client import KafkaClientError, connect
from protocol.api import ApiKey
from protocol.framing import encode_frame
from protocol.headers import encode_request

pytestmark = pytest.mark.clients


def api_versions_frame(correlation_id: int) -> bytes:
    return encode_frame(encode_request(ApiKey.API_VERSIONS, 0, correlation_id, "reset", {}))


def read_frame(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
        chunk = sock.recv(65536)
        assert chunk, "broker closed the connection"
        data += chunk
    return data[4:]


@pytest.mark.parametrize("unread_responses", [0, 500])
def test_client_reset_is_a_dropped_connection_not_an_internal_error(
    broker_factory, unread_responses
):
    """A client that resets its connection (idle, or with responses still to
    write) is an everyday event: one DEBUG line, no ERROR, no traceback."""
    broker = broker_factory(log_level="DEBUG")
    with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
        peer = "{}:{}".format(*sock.getsockname()[:2])
        sock.sendall(api_versions_frame(1))
        read_frame(sock)  # the broker has accepted and registered this connection
        sock.sendall(b"".join(api_versions_frame(i) for i in range(2, 2 + unread_responses)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # closed with linger 0: an RST instead of a FIN

    line = broker.wait_for_log(rf".*\b{peer}\b.*").group(0)
    assert "ERROR" not in line and "internal error" not in line, line
    broker.assert_no_traceback()
    assert broker.alive()


@pytest.mark.parametrize(
    "topics", [[], [{"topic": "anything", "partitions": []}]], ids=["no-topics", "no-partitions"]
)
async def test_fetch_naming_no_partitions_is_answered_at_once(broker_factory, topics):
    """Kafka answers a Fetch with nothing to wait for at once (ReplicaManager's
    fetchInfos.isEmpty); waiting must not spin, and must not block shutdown."""
    broker = broker_factory(network={"shutdown_timeout_ms": 1000})
    body = {"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 1 << 20}
    async with connect(broker.host, broker.port) as conn:
        with trio.fail_after(5):
            response = await conn.request(ApiKey.FETCH, body | {"topics": topics})
        assert response.error_code == 0
        assert [len(t.partitions) for t in response.responses] == [0] * len(topics)
    assert broker.stop() == 0


async def test_closed_connection_frees_its_slot_while_a_long_poll_is_pending(broker_factory):
    """A peer that sends a long-poll Fetch and closes must not keep holding one
    of max.connections.per.ip until max_wait_ms runs out (Kafka frees the slot
    when the socket closes; a client may ask for max_wait_ms up to 24 days)."""
    broker = broker_factory(network={"connections_per_ip_max": 2})
    async with connect(broker.host, broker.port) as conn:
        topic = {"name": "quiet", "num_partitions": 1, "replication_factor": 1}
        await conn.request(ApiKey.CREATE_TOPICS, {"topics": [topic], "timeout_ms": 5000})
    partition = {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1024}
    body = {
        "replica_id": -1,
        "max_wait_ms": 120_000,
        "min_bytes": 1,
        "max_bytes": 1024,
        "topics": [{"topic": "quiet", "partitions": [partition]}],
    }
    for i in range(2):
        with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
            sock.sendall(api_versions_frame(i))
            read_frame(sock)
            sock.sendall(encode_frame(encode_request(ApiKey.FETCH, 11, 100 + i, "quit", body)))

    with trio.fail_after(10):
        while True:
            try:
                async with connect(broker.host, broker.port) as conn:
                    assert conn.versions
                    break
            except* KafkaClientError:
                await trio.sleep(0.1)  # poll: the broker may not have seen the close yet
