"""Broken request bytes raise MalformedRequestError (one type the broker catches)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.api import ApiKey
from protocol.errors import MalformedRequestError, ProtocolError
from protocol.headers import decode_request, encode_request

_GOOD = encode_request(
    ApiKey.PRODUCE,
    9,
    1,
    "client",
    {
        "acks": -1,
        "timeout_ms": 1000,
        "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": b"r" * 70}]}],
    },
)


@pytest.mark.parametrize("cut", range(8, len(_GOOD) - 1))
def test_every_truncation_is_malformed(cut: int) -> None:
    with pytest.raises(MalformedRequestError):
        decode_request(_GOOD[:cut])


def test_bad_utf8_in_client_id() -> None:
    frame = bytearray(encode_request(ApiKey.METADATA, 1, 1, "ab", {"topics": []}))
    frame[10] = 0xFF
    with pytest.raises(MalformedRequestError):
        decode_request(bytes(frame))


def test_bad_utf8_in_body() -> None:
    frame = bytearray(encode_request(ApiKey.METADATA, 1, 1, "ab", {"topics": [{"name": "x"}]}))
    frame[-1] = 0xC3
    with pytest.raises(MalformedRequestError):
        decode_request(bytes(frame))


def test_negative_array_length() -> None:
    frame = encode_request(ApiKey.METADATA, 4, 1, None, {})[:-5] + b"\xff\xff\xff\xfe\x00"
    with pytest.raises(MalformedRequestError):
        decode_request(frame)


def test_huge_array_length_refused_without_allocating() -> None:
    frame = encode_request(ApiKey.METADATA, 4, 1, None, {})[:-5] + b"\x7f\xff\xff\xff\x00"
    with pytest.raises(MalformedRequestError):
        decode_request(frame)


def test_overlong_varint() -> None:
    header = encode_request(ApiKey.METADATA, 9, 1, None, {})[:11]
    with pytest.raises(MalformedRequestError):
        decode_request(header + b"\xff\xff\xff\xff\xff\x01")


def test_tagged_field_length_past_end() -> None:
    frame = encode_request(ApiKey.API_VERSIONS, 3, 1, None, {})
    with pytest.raises(MalformedRequestError):
        decode_request(frame[:-1] + b"\x01\x00\x10ab")


def test_tagged_fields_out_of_order() -> None:
    frame = encode_request(ApiKey.API_VERSIONS, 3, 1, None, {})
    with pytest.raises(MalformedRequestError):
        decode_request(frame[:-1] + b"\x02\x05\x00\x01\x00")


@given(st.binary(max_size=64), st.sampled_from([(0, 3), (0, 9), (1, 11), (3, 1), (18, 3)]))
def test_random_bodies_never_escape_as_other_errors(tail: bytes, key_version) -> None:
    api_key, version = key_version
    frame = encode_request(api_key, version, 1, "c", {})[:11] + tail
    with contextlib.suppress(ProtocolError):
        decode_request(frame)
