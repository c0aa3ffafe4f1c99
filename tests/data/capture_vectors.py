"""Capture record batches written by real Kafka clients, as test vectors.

Run by hand from the repository root (it is not a test)::

    pip install python-snappy lz4 zstandard   # kafka-python's optional codecs
    python tests/data/capture_vectors.py

It writes tests/data/vectors/<client>-<codec>.bin, one RecordBatch v2 each,
for the clients confluent-kafka (librdkafka) and kafka-python and the codecs
none, gzip, snappy, lz4 and zstd, plus tests/data/vectors/manifest.json with
the records that went in (keys, values, headers, timestamps) and the client
versions. tests/test_vectors.py decodes every vector against the manifest.

How the bytes are obtained:

- kafka-python: its own batch builder (kafka.record.memory_records.
  MemoryRecordsBuilder), the object its producer fills and sends as is.
- confluent-kafka: librdkafka only talks to a broker, so this tool runs a
  tiny fake broker on 127.0.0.1 that answers ApiVersions, Metadata (one topic,
  one partition, led by itself) and Produce, and keeps the records field of
  each Produce request. It advertises Produce 3-7 and Fetch 4-10 because
  librdkafka enables message format v2 and zstd from those versions, and
  FindCoordinator 0 because its lz4 support is keyed on it; the producer
  never sends those requests.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import struct
import sys
import threading
from pathlib import Path

import construct as c

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from protocol.batch import iter_batches, validate_batch  # noqa: E402
from protocol.primitives import (  # noqa: E402
    Array,
    Boolean,
    Int16,
    Int32,
    Int64,
    NullableString,
    Records,
    String,
)

log = logging.getLogger("capture_vectors")

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
TOPIC = "vectors"
NODE_ID = 1
FRAME_BYTES_MAX = 1 << 20
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
BASE_TIMESTAMP_MS = 1_700_000_000_000

SAMPLE = [
    (b"key-0", b"hello trilog " * 8, [("trace-id", b"abc123"), ("empty", b"")]),
    (None, b"a value without a key, " * 4, []),
    (b"tombstone", None, [("null-header", None)]),
    (b"", b"", [("utf8-\u00e9\u4e2d", b"\x00\x01\xfe\xff")]),
    (b"key-4", b"the last record repeats itself. " * 6, [("a", b"1"), ("a", b"2")]),
]
"""Keys, values and headers of every vector: a null key, a null value, empty
bytes, a null header value, a non-ASCII header key, a repeated header key."""

# -- the wire formats the fake broker speaks (non-flexible versions only) ----

API_PRODUCE, API_FETCH, API_METADATA, API_FIND_COORDINATOR, API_VERSIONS = 0, 1, 3, 10, 18
SUPPORTED = {  # api key: (min version, max version)
    API_PRODUCE: (3, 7),
    API_FETCH: (4, 10),
    API_METADATA: (0, 4),
    API_FIND_COORDINATOR: (0, 0),
    API_VERSIONS: (0, 2),
}
UNSUPPORTED_VERSION = 35

REQUEST_HEADER = c.Struct(
    "api_key" / Int16,
    "api_version" / Int16,
    "correlation_id" / Int32,
    "client_id" / NullableString,
)
PRODUCE_REQUEST_V3 = c.Struct(
    "transactional_id" / NullableString,
    "acks" / Int16,
    "timeout_ms" / Int32,
    "topics"
    / Array(
        c.Struct(
            "name" / String,
            "partitions" / Array(c.Struct("index" / Int32, "records" / Records)),
        )
    ),
)


def api_versions_response(version: int) -> c.Struct:
    fields = [
        "error_code" / Int16,
        "api_keys"
        / Array(c.Struct("api_key" / Int16, "min_version" / Int16, "max_version" / Int16)),
    ]
    if version >= 1:
        fields.append("throttle_time_ms" / Int32)
    return c.Struct(*fields)


def metadata_response(version: int) -> c.Struct:
    broker = ["node_id" / Int32, "host" / String, "port" / Int32]
    if version >= 1:
        broker.append("rack" / NullableString)
    partition = c.Struct(
        "error_code" / Int16,
        "index" / Int32,
        "leader_id" / Int32,
        "replicas" / Array(Int32),
        "isr" / Array(Int32),
    )
    topic = ["error_code" / Int16, "name" / String]
    if version >= 1:
        topic.append("is_internal" / Boolean)
    topic.append("partitions" / Array(partition))
    fields = ["throttle_time_ms" / Int32] if version >= 3 else []
    fields.append("brokers" / Array(c.Struct(*broker)))
    if version >= 2:
        fields.append("cluster_id" / NullableString)
    if version >= 1:
        fields.append("controller_id" / Int32)
    fields.append("topics" / Array(c.Struct(*topic)))
    return c.Struct(*fields)


def produce_response(version: int) -> c.Struct:
    partition = ["index" / Int32, "error_code" / Int16, "base_offset" / Int64]
    if version >= 2:
        partition.append("log_append_time_ms" / Int64)
    if version >= 5:
        partition.append("log_start_offset" / Int64)
    topic = c.Struct("name" / String, "partitions" / Array(c.Struct(*partition)))
    fields = ["responses" / Array(topic)]
    if version >= 1:
        fields.append("throttle_time_ms" / Int32)
    return c.Struct(*fields)


REQUEST = c.Struct("header" / REQUEST_HEADER, "body" / c.GreedyBytes)
"""Request header v1; ApiVersions v3+ adds tagged fields after it, which the
fake broker never reads because it answers that version with an error."""


# -- the fake broker -----------------------------------------------------------


class FakeBroker(socketserver.ThreadingTCPServer):
    """A one-partition broker that acknowledges Produce and keeps the records field."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Connection)
        self.port: int = self.server_address[1]
        self.lock = threading.Lock()
        self.produced: list[bytes] = []

    def take_produced(self) -> list[bytes]:
        with self.lock:
            produced, self.produced = self.produced, []
        return produced


class _Connection(socketserver.BaseRequestHandler):
    server: FakeBroker

    def handle(self) -> None:
        while (frame := _read_frame(self.request)) is not None:
            request = REQUEST.parse(frame)
            reply = self.answer(request.header, request.body)
            if reply is None:
                return
            payload = Int32.build(request.header.correlation_id) + reply
            self.request.sendall(Int32.build(len(payload)) + payload)

    def answer(self, header: c.Container, body: bytes) -> bytes | None:
        """The response body, or None to hang up on a request we do not serve."""
        key, version = header.api_key, header.api_version
        if key == API_VERSIONS:
            return _api_versions_body(version)
        if key == API_METADATA and _supported(key, version):
            return _metadata_body(version, self.server.port)
        if key == API_PRODUCE and _supported(key, version):
            return self.produce_body(version, body)
        log.warning("fake broker: unexpected request %d v%d, closing", key, version)
        return None

    def produce_body(self, version: int, body: bytes) -> bytes:
        request = PRODUCE_REQUEST_V3.parse(body)
        responses = []
        for topic in request.topics:
            with self.server.lock:
                self.server.produced.extend(bytes(p.records) for p in topic.partitions)
            partitions = [
                {
                    "index": p.index,
                    "error_code": 0,
                    "base_offset": 0,
                    "log_append_time_ms": -1,
                    "log_start_offset": 0,
                }
                for p in topic.partitions
            ]
            responses.append({"name": topic.name, "partitions": partitions})
        return produce_response(version).build({"responses": responses, "throttle_time_ms": 0})


def _supported(key: int, version: int) -> bool:
    low, high = SUPPORTED[key]
    return low <= version <= high


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_frame(sock: socket.socket) -> bytes | None:
    prefix = _read_exactly(sock, 4)
    if prefix is None:
        return None
    (size,) = struct.unpack(">i", prefix)
    if not 0 < size <= FRAME_BYTES_MAX:
        raise ValueError(f"frame of {size} bytes")
    return _read_exactly(sock, size)


def _api_versions_body(version: int) -> bytes:
    """Our versions; a version we do not serve gets UNSUPPORTED_VERSION in the
    v0 layout, which tells the client which ApiVersions versions to retry with."""
    api_keys = [
        {"api_key": key, "min_version": low, "max_version": high}
        for key, (low, high) in sorted(SUPPORTED.items())
    ]
    if _supported(API_VERSIONS, version):
        error_code, layout = 0, version
    else:
        error_code, layout = UNSUPPORTED_VERSION, 0
    return api_versions_response(layout).build(
        {"error_code": error_code, "api_keys": api_keys, "throttle_time_ms": 0}
    )


def _metadata_body(version: int, port: int) -> bytes:
    partition = {"error_code": 0, "index": 0, "leader_id": NODE_ID, "replicas": [NODE_ID]}
    partition["isr"] = [NODE_ID]
    return metadata_response(version).build(
        {
            "throttle_time_ms": 0,
            "brokers": [{"node_id": NODE_ID, "host": "127.0.0.1", "port": port, "rack": None}],
            "cluster_id": "trilog-vectors",
            "controller_id": NODE_ID,
            "topics": [
                {"error_code": 0, "name": TOPIC, "is_internal": False, "partitions": [partition]}
            ],
        }
    )


# -- the clients -----------------------------------------------------------------


def capture_confluent(broker: FakeBroker, codec: str) -> bytes:
    """One batch as librdkafka sends it in a Produce request."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{broker.port}",
            "compression.type": codec,
            "linger.ms": 50,
            "enable.idempotence": False,
            "message.timeout.ms": 10_000,
        }
    )
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(err)

    for i, (key, value, headers) in enumerate(SAMPLE):
        producer.produce(
            TOPIC,
            value=value,
            key=key,
            headers=headers,
            partition=0,
            timestamp=BASE_TIMESTAMP_MS + i,
            on_delivery=delivered,
        )
    if producer.flush(15) or errors:
        raise KafkaException(f"librdkafka did not deliver: {errors}")
    return _single_batch(broker.take_produced())


def capture_kafka_python(codec: str) -> bytes:
    """One batch from kafka-python's own builder, the bytes its producer sends."""
    from kafka.record.memory_records import MemoryRecordsBuilder

    builder = MemoryRecordsBuilder(magic=2, compression_type=CODECS[codec], batch_size=1 << 20)
    for i, (key, value, headers) in enumerate(SAMPLE):
        builder.append(BASE_TIMESTAMP_MS + i, key, value, headers)
    builder.close()
    return _single_batch([bytes(builder.buffer())])


def _single_batch(produced: list[bytes]) -> bytes:
    data = b"".join(produced)
    batches = list(iter_batches(data))
    if len(batches) != 1:
        raise RuntimeError(f"expected one batch, got {len(batches)}")
    return data


def _check_codec(batch: bytes, codec: str) -> None:
    """Clients may fall back to no compression; a vector must hold what it is named."""
    actual = validate_batch(batch).compression
    if actual != CODECS[codec]:
        raise RuntimeError(f"asked for {codec}, the client wrote codec {actual}")


def _manifest_records() -> list[dict]:
    def hex_or_none(data: bytes | None) -> str | None:
        return None if data is None else data.hex()

    return [
        {
            "offset_delta": i,
            "timestamp": BASE_TIMESTAMP_MS + i,
            "key": hex_or_none(key),
            "value": hex_or_none(value),
            "headers": [[name, hex_or_none(data)] for name, data in headers],
        }
        for i, (key, value, headers) in enumerate(SAMPLE)
    ]


def main() -> None:
    import confluent_kafka
    import kafka

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    VECTORS_DIR.mkdir(parents=True, exist_ok=True)
    vectors = {}
    broker = FakeBroker()
    threading.Thread(target=broker.serve_forever, daemon=True).start()
    try:
        for codec in CODECS:
            for client, capture in (
                ("confluent-kafka", lambda codec=codec: capture_confluent(broker, codec)),
                ("kafka-python", lambda codec=codec: capture_kafka_python(codec)),
            ):
                name = f"{client}-{codec}.bin"
                data = capture()
                _check_codec(data, codec)
                (VECTORS_DIR / name).write_bytes(data)
                vectors[name] = {"client": client, "codec": codec, "codec_id": CODECS[codec]}
                log.info("captured %s", name)
    finally:
        broker.shutdown()
        broker.server_close()
    manifest = {
        "clients": {
            "confluent-kafka": f"{confluent_kafka.version()} "
            f"(librdkafka {confluent_kafka.libversion()[0]})",
            "kafka-python": kafka.__version__,
        },
        "count": len(SAMPLE),
        "records": _manifest_records(),
        "vectors": vectors,
    }
    (VECTORS_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
