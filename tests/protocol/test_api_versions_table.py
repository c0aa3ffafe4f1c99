"""The served-versions table and the ApiVersions answers built from it."""

from __future__ import annotations

import struct

from protocol.api import MESSAGES, ApiKey
from protocol.api_versions import (
    PLANNED,
    SERVED,
    api_versions_response_body,
    is_served,
    unsupported_api_versions_response,
)
from protocol.errors import ErrorCode
from protocol.headers import decode_response, encode_response


def test_initial_table() -> None:
    assert SERVED == {
        18: (0, 2),
        0: (0, 8),
        1: (4, 11),
        2: (1, 5),
        3: (0, 8),
        19: (2, 4),
        20: (1, 3),
        37: (0, 1),
        32: (1, 3),
        22: (0, 1),
        23: (2, 3),
        10: (0, 2),
        11: (0, 5),
        14: (0, 3),
        12: (0, 3),
        13: (0, 3),
        8: (2, 7),
        9: (1, 5),
        16: (0, 2),
        15: (0, 4),
        42: (0, 1),
        43: (0, 2),
        45: (0, 0),
        46: (0, 0),
        55: (0, 2),
        60: (0, 2),
    }
    assert not SERVED.keys() & PLANNED.keys()


def test_every_range_is_declared() -> None:
    for key, (low, high) in (SERVED | PLANNED).items():
        assert low in MESSAGES[key][0].valid_versions
        assert high in MESSAGES[key][0].valid_versions


def test_is_served() -> None:
    assert is_served(ApiKey.FETCH, 4)
    assert not is_served(ApiKey.FETCH, 3)
    assert not is_served(ApiKey.API_VERSIONS, 3)
    assert is_served(ApiKey.JOIN_GROUP, 0)
    assert not is_served(ApiKey.JOIN_GROUP, 6)
    assert is_served(ApiKey.ELECT_LEADERS, 0)
    assert not is_served(ApiKey.ELECT_LEADERS, 3)


def test_response_body_lists_the_table() -> None:
    payload = encode_response(ApiKey.API_VERSIONS, 2, 1, api_versions_response_body(2))
    _, body = decode_response(ApiKey.API_VERSIONS, 2, payload)
    assert body.error_code == 0
    assert {k.api_key: (k.min_version, k.max_version) for k in body.api_keys} == SERVED


def test_unsupported_api_versions_response() -> None:
    payload = unsupported_api_versions_response(0x01020304)
    assert payload[:6] == struct.pack(">ih", 0x01020304, ErrorCode.UNSUPPORTED_VERSION)
    correlation_id, body = decode_response(ApiKey.API_VERSIONS, 0, payload)
    assert correlation_id == 0x01020304
    assert body.error_code == ErrorCode.UNSUPPORTED_VERSION
    entries = {k.api_key: (k.min_version, k.max_version) for k in body.api_keys}
    assert entries[ApiKey.API_VERSIONS] == (0, 2)
