"""Request and response headers: version choice, KIP-511, and error reporting."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.api import MESSAGES, ApiKey
from protocol.errors import MalformedRequestError, UnknownApiError, UnsupportedVersionError
from protocol.headers import (
    RequestHeaderSchema,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    parse_request_header,
    request_header_version,
    response_header_version,
)
from protocol.schema import UNKNOWN_TAGGED_FIELDS


@pytest.mark.parametrize(
    ("api_key", "version", "expected"),
    [(0, 8, 1), (0, 9, 2), (1, 11, 1), (1, 12, 2), (3, 8, 1), (3, 9, 2), (18, 2, 1), (18, 3, 2)],
)
def test_request_header_version(api_key: int, version: int, expected: int) -> None:
    assert request_header_version(api_key, version) == expected


@pytest.mark.parametrize(
    ("api_key", "version", "expected"),
    [(0, 8, 0), (0, 9, 1), (1, 12, 1), (19, 5, 1), (18, 0, 0), (18, 3, 0), (18, 4, 0)],
)
def test_response_header_version(api_key: int, version: int, expected: int) -> None:
    assert response_header_version(api_key, version) == expected


def test_flexible_header_keeps_classic_client_id_then_tagged_fields() -> None:
    frame = encode_request(ApiKey.API_VERSIONS, 3, 77, "rdkafka", {})
    assert frame[8:10] == b"\x00\x07"  # INT16 length, not a varint
    assert frame[10:17] == b"rdkafka"
    assert frame[17] == 0  # empty header TAGGED_FIELDS
    header, offset = parse_request_header(frame)
    assert header.header_version == 2
    assert header.client_id == "rdkafka"
    assert offset == 18


def test_header_tagged_fields_are_skipped() -> None:
    plain = encode_request(ApiKey.METADATA, 9, 1, "c", {"topics": None})
    with_tag = plain[:11] + b"\x01\x05\x02hi" + plain[12:]
    header, body = decode_request(with_tag)
    assert header.client_id == "c"
    assert body.topics is None


def test_non_flexible_header_has_no_tagged_fields() -> None:
    frame = encode_request(ApiKey.PRODUCE, 8, 5, "c", {"acks": 1})
    header, offset = parse_request_header(frame)
    assert header.header_version == 1
    assert offset == 11


def test_flexible_response_header_has_tagged_fields() -> None:
    payload = encode_response(ApiKey.METADATA, 9, 3, {})
    assert payload[:5] == b"\x00\x00\x00\x03\x00"
    assert decode_response(ApiKey.METADATA, 9, payload)[0] == 3


def test_api_versions_response_header_is_always_v0() -> None:
    payload = encode_response(ApiKey.API_VERSIONS, 3, 3, {})
    body, _ = MESSAGES[ApiKey.API_VERSIONS][1].decode(payload, 3, 4)
    assert body.error_code == 0
    assert decode_response(ApiKey.API_VERSIONS, 3, payload)[0] == 3


def test_unknown_api_key() -> None:
    frame = struct.pack(">hhi", 999, 0, 12) + b"\xff\xff"
    with pytest.raises(UnknownApiError) as info:
        decode_request(frame)
    assert (info.value.api_key, info.value.api_version, info.value.correlation_id) == (999, 0, 12)


def test_version_outside_schema() -> None:
    frame = struct.pack(">hhi", ApiKey.API_VERSIONS, 99, 13) + b"\xff\xff\x00"
    with pytest.raises(UnsupportedVersionError) as info:
        parse_request_header(frame)
    assert (info.value.api_key, info.value.api_version, info.value.correlation_id) == (18, 99, 13)


def test_short_frame_is_malformed() -> None:
    with pytest.raises(MalformedRequestError):
        parse_request_header(b"\x00\x03\x00")


def test_decode_request_round_trip() -> None:
    body = {"topics": [{"name": "t"}], "allow_auto_topic_creation": False}
    header, decoded = decode_request(encode_request(ApiKey.METADATA, 8, 9, None, body))
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 8, 9)
    assert header.client_id is None
    assert decoded.topics[0].name == "t"
    assert decoded.allow_auto_topic_creation is False


@given(
    client_id=st.none() | st.text(max_size=30),
    tags=st.dictionaries(st.integers(0, 1000), st.binary(max_size=8), max_size=3),
    version=st.sampled_from([1, 2]),
)
def test_hot_path_header_parse_agrees_with_schema(client_id, tags, version) -> None:
    api_version = 9 if version == 2 else 8
    fields = {
        "request_api_key": ApiKey.PRODUCE,
        "request_api_version": api_version,
        "correlation_id": 1,
        "client_id": client_id,
        UNKNOWN_TAGGED_FIELDS: tags if version == 2 else {},
    }
    frame = RequestHeaderSchema.encode(fields, version) + b"body"
    expected, expected_offset = RequestHeaderSchema.decode(frame, version)
    header, offset = parse_request_header(frame)
    assert offset == expected_offset
    assert header.client_id == expected.client_id == client_id


def test_bad_client_id_length_is_malformed() -> None:
    frame = struct.pack(">hhih", ApiKey.METADATA, 1, 1, -2)
    with pytest.raises(MalformedRequestError):
        parse_request_header(frame)
