"""Byte-exactness against a real client: kafka-python's own protocol code.

kafka-python 3 carries two independent implementations: classes generated at
import time from Kafka's JSON (kafka.protocol.{producer,consumer,metadata,admin})
and the older hand-written schemas (kafka.protocol.old). Every declared
message at every version both sides know must encode to the same bytes and
decode the other side's bytes; a few requests and responses also cross over
with headers, as they would on a socket.
"""

from __future__ import annotations

import importlib

import pytest
from protocol_samples import sample

from protocol.api import MESSAGES, ApiKey
from protocol.headers import decode_request, decode_response, encode_request, encode_response
from protocol.schema import Message

kafka_protocol = pytest.importorskip("kafka.protocol")
old_produce = importlib.import_module("kafka.protocol.old.produce")
old_fetch = importlib.import_module("kafka.protocol.old.fetch")
old_metadata = importlib.import_module("kafka.protocol.old.metadata")
old_api_versions = importlib.import_module("kafka.protocol.old.api_versions")

pytestmark = pytest.mark.clients


def _kafka_python_classes() -> dict[str, type]:
    classes = {}
    for package in ("producer", "consumer", "metadata", "admin"):
        module = importlib.import_module(f"kafka.protocol.{package}")
        for value in vars(module).values():
            if isinstance(value, type) and getattr(value, "_json", None):
                classes[value._json["name"]] = value
    return classes


KAFKA_PYTHON = _kafka_python_classes()


def _to_kafka_python(cls: type, value: dict):
    """Our body dict as kafka-python's nested DataContainer objects."""
    kwargs = {}
    for name, item in value.items():
        field = cls._struct.fields[name]
        if field.is_struct_array() and item is not None:
            item = [_to_kafka_python(field.array_of.data_class, x) for x in item]
        elif field.is_struct() and item is not None:
            item = _to_kafka_python(field.data_class, item)
        kwargs[name] = item
    return cls(**kwargs)


def _has_authorized_operations(message: Message, version: int) -> bool:
    """kafka-python maps these bitfields to sets of ACL operations: not comparable."""
    return "authorized_operations" in repr(sample(message, version))


CASES = [
    pytest.param(message, version, id=f"{message.name}-v{version}")
    for pair in MESSAGES.values()
    for message in pair
    if message.name in KAFKA_PYTHON
    for version in message.valid_versions
    if version <= KAFKA_PYTHON[message.name].max_version
    and not _has_authorized_operations(message, version)
]


def test_kafka_python_declares_most_of_our_messages() -> None:
    assert len(CASES) > 300


@pytest.mark.parametrize(("message", "version"), CASES)
@pytest.mark.parametrize("nulls", [False, True], ids=["values", "nulls"])
def test_same_bytes_as_kafka_python(message: Message, version: int, nulls: bool) -> None:
    cls = KAFKA_PYTHON[message.name]
    body = sample(message, version, nulls=nulls)
    if message.name == "ApiVersionsResponse":
        body["error_code"] = 0  # kafka-python decodes an error answer as v0 (KIP-511)
    ours = message.encode(body, version)
    assert _to_kafka_python(cls, body).encode(version=version, header=False) == ours
    theirs = cls.decode(ours, version=version, header=False)
    theirs._header = None  # kafka-python's decode leaves this slot unset
    assert theirs.encode(version=version, header=False) == ours


def test_old_produce_v3_request_with_header() -> None:
    request = old_produce.ProduceRequest[3](
        transactional_id=None,
        acks=-1,
        timeout_ms=1500,
        topic_data=[("orders", [(0, b"batch-0"), (2, b"batch-2")])],
    )
    request.with_header(correlation_id=11, client_id="kp")
    header, body = decode_request(request.encode(header=True))
    assert (header.api_key, header.api_version, header.correlation_id) == (0, 3, 11)
    assert header.client_id == "kp"
    assert body == {
        "transactional_id": None,
        "acks": -1,
        "timeout_ms": 1500,
        "topic_data": [
            {
                "name": "orders",
                "partition_data": [
                    {"index": 0, "records": b"batch-0"},
                    {"index": 2, "records": b"batch-2"},
                ],
            }
        ],
    }


def test_old_produce_v8_response_decodes_ours() -> None:
    body = {
        "responses": [
            {
                "name": "orders",
                "partition_responses": [{"index": 0, "error_code": 0, "base_offset": 42}],
            }
        ],
        "throttle_time_ms": 0,
    }
    payload = encode_response(ApiKey.PRODUCE, 8, 12, body)
    response = old_produce.ProduceResponse[8].decode(payload, header=True)
    assert response.header.correlation_id == 12
    partition = response.to_object()["responses"][0]["partition_responses"][0]
    assert partition["base_offset"] == 42
    assert partition["log_append_time_ms"] == -1
    assert partition["log_start_offset"] == -1
    assert partition["error_message"] is None


def test_old_fetch_v11_response_decodes_ours() -> None:
    partitions = [
        {"partition_index": i, "high_watermark": 10 + i, "records": bytes([i]) * 70}
        for i in range(3)
    ]
    body = {"session_id": 7, "responses": [{"topic": "t", "partitions": partitions}]}
    payload = encode_response(ApiKey.FETCH, 11, 99, body)
    response = old_fetch.FetchResponse[11].decode(payload, header=True)
    assert response.header.correlation_id == 99
    assert response.session_id == 7
    topic, decoded = response.topics[0]
    assert topic == "t"
    assert [p[0] for p in decoded] == [0, 1, 2]
    assert decoded[2][-1] == bytes([2]) * 70


def test_old_fetch_v4_request_with_header() -> None:
    request = old_fetch.FetchRequest[4](
        -1, 500, 1, 1 << 20, 0, [("t", [(0, 100, 1 << 20), (1, 5, 1024)])]
    )
    request.with_header(correlation_id=3, client_id="kp")
    header, body = decode_request(request.encode(header=True))
    assert header.api_version == 4
    assert body.replica_id == -1
    assert body.max_wait_ms == 500
    assert body.isolation_level == 0
    assert body.topics[0].partitions[1].fetch_offset == 5
    assert body.topics[0].partitions[1].partition_max_bytes == 1024


def test_old_metadata_v1_request_and_response() -> None:
    request = old_metadata.MetadataRequest[1](topics=["a", "b"])
    request.with_header(correlation_id=1, client_id=None)
    _, body = decode_request(request.encode(header=True))
    assert [t.name for t in body.topics] == ["a", "b"]
    response_body = {
        "brokers": [{"node_id": 1, "host": "localhost", "port": 9092, "rack": None}],
        "controller_id": 1,
        "topics": [
            {
                "error_code": 0,
                "name": "a",
                "partitions": [
                    {
                        "partition_index": 0,
                        "leader_id": 1,
                        "replica_nodes": [1],
                        "isr_nodes": [1],
                    }
                ],
            }
        ],
    }
    payload = encode_response(ApiKey.METADATA, 1, 1, response_body)
    response = old_metadata.MetadataResponse[1].decode(payload, header=True)
    assert response.to_object()["brokers"][0]["host"] == "localhost"
    assert response.to_object()["topics"][0]["partitions"][0]["isr_nodes"] == [1]


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_api_versions_response_read_by_kafka_python(version: int) -> None:
    body = {"api_keys": [{"api_key": 18, "min_version": 0, "max_version": 2}]}
    payload = encode_response(ApiKey.API_VERSIONS, version, 5, body)
    response = old_api_versions.ApiVersionsResponse[version].decode(payload, header=True)
    assert response.header.correlation_id == 5
    assert tuple(response.api_keys[0][:3]) == (18, 0, 2)


@pytest.mark.parametrize("version", [0, 3])
def test_api_versions_request_from_kafka_python(version: int) -> None:
    request = KAFKA_PYTHON["ApiVersionsRequest"](
        client_software_name="kafka-python", client_software_version="3"
    )
    request.with_header(correlation_id=8, client_id="kp")
    header, body = decode_request(request.encode(version=version, header=True))
    assert (header.api_version, header.correlation_id, header.client_id) == (version, 8, "kp")
    if version >= 3:
        assert body.client_software_name == "kafka-python"


def test_produce_v9_request_from_kafka_python_with_header() -> None:
    body = sample(MESSAGES[ApiKey.PRODUCE][0], 9)
    request = _to_kafka_python(KAFKA_PYTHON["ProduceRequest"], body)
    request.with_header(correlation_id=21, client_id="kp")
    payload = request.encode(version=9, header=True)
    assert payload == encode_request(ApiKey.PRODUCE, 9, 21, "kp", body)
    header, decoded = decode_request(payload)
    assert header.header_version == 2
    assert decoded == body


def test_fetch_v12_response_read_by_kafka_python_with_header() -> None:
    body = sample(MESSAGES[ApiKey.FETCH][1], 12)
    payload = encode_response(ApiKey.FETCH, 12, 4, body)
    response = KAFKA_PYTHON["FetchResponse"].decode(payload, version=12, header=True)
    assert response.header.correlation_id == 4
    assert decode_response(ApiKey.FETCH, 12, payload) == (4, body)
