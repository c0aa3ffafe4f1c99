"""Every declared message, at every version Kafka's JSON allows, round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_samples import sample, strategy

from protocol.api import MESSAGES
from protocol.errors import MalformedMessageError
from protocol.schema import UNKNOWN_TAGGED_FIELDS, Data, Field, Message, snake_case

ALL_VERSIONS = [
    pytest.param(message, version, id=f"{message.name}-v{version}")
    for pair in MESSAGES.values()
    for message in pair
    for version in message.valid_versions
]


@pytest.mark.parametrize(("message", "version"), ALL_VERSIONS)
@pytest.mark.parametrize("nulls", [False, True], ids=["values", "nulls"])
def test_round_trip(message: Message, version: int, nulls: bool) -> None:
    body = sample(message, version, nulls=nulls)
    wire = message.encode(body, version)
    decoded, end = message.decode(wire, version)
    assert end == len(wire)
    assert decoded == body


@pytest.mark.parametrize(("message", "version"), ALL_VERSIONS)
def test_empty_dict_encodes_defaults(message: Message, version: int) -> None:
    wire = message.encode({}, version)
    decoded, _ = message.decode(wire, version)
    assert decoded == message.default(version)


def test_decoded_values_have_attribute_access() -> None:
    request, _ = MESSAGES[0]
    wire = request.encode({"acks": -1, "topic_data": [{"name": "t"}]}, 8)
    body, _ = request.decode(wire, 8)
    assert isinstance(body, Data)
    assert body.acks == -1
    assert body.topic_data[0].name == "t"
    assert body.topic_data[0].partition_data == []
    assert body.transactional_id is None


def test_defaults_follow_the_json() -> None:
    _, response = MESSAGES[1]  # Fetch
    partition = response.default(11)
    assert partition.session_id == 0
    assert partition.responses == []
    _, produce_response = MESSAGES[0]
    body = {"responses": [{"name": "t", "partition_responses": [{"index": 0}]}]}
    decoded, _ = produce_response.decode(produce_response.encode(body, 8), 8)
    partition = decoded.responses[0].partition_responses[0]
    assert partition.log_append_time_ms == -1
    assert partition.log_start_offset == -1
    assert partition.error_message is None
    assert partition.record_errors == []


def test_unknown_tagged_fields_are_kept() -> None:
    request, _ = MESSAGES[18]  # ApiVersions v3 request: flexible, no known tags
    body = {"client_software_name": "x", "client_software_version": "1"}
    wire = request.encode({**body, UNKNOWN_TAGGED_FIELDS: {5: b"\x01\x02", 9: b""}}, 3)
    decoded, _ = request.decode(wire, 3)
    assert decoded == {**body, UNKNOWN_TAGGED_FIELDS: {5: b"\x01\x02", 9: b""}}
    assert request.encode(decoded, 3) == wire


def test_tagged_field_at_default_is_not_written() -> None:
    _, response = MESSAGES[18]
    plain = response.encode({}, 3)
    tagged = response.encode({"finalized_features_epoch": 5}, 3)
    assert plain[-1] == 0  # empty TAGGED_FIELDS
    assert len(tagged) > len(plain)
    assert response.encode({"finalized_features_epoch": -1}, 3) == plain


def test_version_outside_range_is_refused() -> None:
    request, _ = MESSAGES[18]
    with pytest.raises(ValueError, match="no version 99"):
        request.encode({}, 99)


@pytest.mark.parametrize(
    ("kafka", "python"),
    [
        ("TopicId", "topic_id"),
        ("ErrorCode", "error_code"),
        ("ThrottleTimeMs", "throttle_time_ms"),
        ("IsrNodes", "isr_nodes"),
        ("ZkMigrationReady", "zk_migration_ready"),
        ("ProducerIdStart", "producer_id_start"),
    ],
)
def test_snake_case(kafka: str, python: str) -> None:
    assert snake_case(kafka) == python


def test_struct_without_fields_is_refused() -> None:
    with pytest.raises(TypeError):
        Field("Topics", "[]Topic")


_HYPOTHESIS_CASES = [
    (0, 0, 3),
    (0, 0, 9),
    (1, 1, 11),
    (1, 1, 12),
    (3, 1, 8),
    (19, 0, 5),
    (18, 1, 3),
]


@pytest.mark.parametrize(("api_key", "side", "version"), _HYPOTHESIS_CASES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip_hypothesis(api_key: int, side: int, version: int, data) -> None:
    message = MESSAGES[api_key][side]
    body = data.draw(strategy(message, version))
    wire = message.encode(body, version)
    decoded, end = message.decode(wire, version)
    assert end == len(wire)
    assert decoded == body
    assert message.struct(version).build(body) == wire


def test_nullability_follows_the_version() -> None:
    request, _ = MESSAGES[3]  # Metadata: Topics nullable from v1
    with pytest.raises(ValueError):
        request.encode({"topics": None}, 0)
    assert request.decode(request.encode({"topics": None}, 1), 1)[0].topics is None


def test_default_of_nullable_string_absent_in_version() -> None:
    request, _ = MESSAGES[0]  # Produce: TransactionalId only from v3
    assert "transactional_id" not in request.default(2)
    assert request.default(3).transactional_id is None


def test_malformed_body_raises_malformed_message_error() -> None:
    request, _ = MESSAGES[0]
    with pytest.raises(MalformedMessageError):
        request.decode(b"\x00\x01", 3)
